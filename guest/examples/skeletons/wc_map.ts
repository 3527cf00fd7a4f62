import { input, output, frames } from "nuvola";
// Word count, map side: counts the words of a piece of text (runs of ASCII letters and digits
// and bytes ≥ 128, ASCII letters lower-cased) and answers a framed list word, count (u32),
// word, count, … — one pair per distinct word of the piece.
function wordByte(c: u32): bool {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c >= 128;
}
export function main(): i32 {
  const text = input();
  const counts = new Map<string, u32>();
  const n = text.length;
  let i = 0;
  while (i < n) {
    while (i < n && !wordByte(<u32>text[i])) i++;
    const start = i;
    while (i < n && wordByte(<u32>text[i])) i++;
    if (i > start) {
      // Latin-1 string of the word's bytes: one char per byte, so any bytes round-trip.
      const codes = new Array<i32>(i - start);
      for (let j = start; j < i; j++) {
        let c = <i32>text[j];
        if (c >= 65 && c <= 90) c += 32;
        codes[j - start] = c;
      }
      const word = String.fromCharCodes(codes);
      counts.set(word, counts.has(word) ? counts.get(word) + 1 : 1);
    }
  }
  const words = counts.keys();
  const parts = new Array<Uint8Array>(0);
  for (let w = 0; w < words.length; w++) {
    const word = words[w];
    const key = new Uint8Array(word.length);
    for (let j = 0; j < word.length; j++) key[j] = <u8>word.charCodeAt(j);
    const value = new Uint8Array(4);
    store<u32>(value.dataStart, counts.get(word));
    parts.push(key);
    parts.push(value);
  }
  output(frames.join(parts));
  return 0;
}
