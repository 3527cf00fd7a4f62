// A WASI command built with @assemblyscript/wasi-shim: counts the lines, words and bytes of
// stdin, like `wc`, and prints them on stdout as `lines words bytes`. `--top` as an argument
// (register with wasi: { args: ['--top'] }) also prints the most frequent word.
const chunk = new ArrayBuffer(4096);
let lines = 0;
let words = 0;
let bytes = 0;
let inWord = false;
let word = '';
const counts = new Map<string, i32>();
const wantTop = process.argv.includes('--top');

function endWord(): void {
  if (!inWord) return;
  inWord = false;
  if (wantTop) counts.set(word, counts.has(word) ? counts.get(word) + 1 : 1);
  word = '';
}

for (;;) {
  const n = process.stdin.read(chunk);
  if (n <= 0) break;
  const view = Uint8Array.wrap(chunk, 0, n);
  bytes += n;
  for (let i = 0; i < n; i++) {
    const c = view[i];
    if (c == 10) lines++;
    if (c == 32 || c == 10 || c == 9 || c == 13) {
      endWord();
    } else {
      if (!inWord) words++;
      inWord = true;
      if (wantTop) word += String.fromCharCode(c);
    }
  }
}
endWord();
let out = `${lines} ${words} ${bytes}`;
if (wantTop) {
  const keys = counts.keys();
  let best = '';
  let bestCount = 0;
  for (let i = 0; i < keys.length; i++) {
    const count = counts.get(keys[i]);
    if (count > bestCount || (count == bestCount && keys[i] < best)) {
      best = keys[i];
      bestCount = count;
    }
  }
  out += ` ${best}:${bestCount}`;
}
process.stdout.write(out + '\n');
