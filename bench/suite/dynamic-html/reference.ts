// SeBS 110.dynamic-html in JavaScript: an HTML page with the user's name and `count` random numbers.
import { text, utf8, Xorshift32 } from '../random.js';

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function reference(input: Uint8Array): Uint8Array {
  const [username = '', count = '0', seed = '1'] = text(input).split('\n');
  const r = new Xorshift32(Number(seed));
  const items: string[] = [];
  for (let i = 0; i < Number(count); i++) items.push(`<li>${r.next() % 1000000}</li>`);
  const name = username.replace(/[&<>"']/g, (c) => escapes[c]!);
  return utf8(
    `<!DOCTYPE html>\n<html>\n<head>\n<title>Randomly generated data.</title>\n<meta charset="utf-8">\n</head>\n<body>\n` +
      `<p>Welcome ${name}!</p>\n<p>Data generated from seed ${seed}:</p>\n<ul>\n${items.join('\n')}\n</ul>\n</body>\n</html>\n`,
  );
}
