import { frames, input, output } from "nuvola";

// Map step: the words (runs of non-spaces) of a piece of text with their counts, as the
// framed list word, count (u32), … (bench/suite/workflow-mapreduce/reference.ts).
export function main(): i32 {
  const text = input();
  const counts = new Map<string, u32>();
  const order = new Array<string>();
  const n = text.length;
  let i = 0;
  while (i < n) {
    while (i < n && unchecked(text[i]) == 32) i++;
    const begin = i;
    while (i < n && unchecked(text[i]) != 32) i++;
    if (i == begin) continue;
    const word = String.UTF8.decodeUnsafe(text.dataStart + <usize>begin, <usize>(i - begin));
    if (counts.has(word)) counts.set(word, counts.get(word) + 1);
    else {
      counts.set(word, 1);
      order.push(word);
    }
  }
  const parts = new Array<Uint8Array>();
  for (let k = 0; k < order.length; k++) {
    parts.push(Uint8Array.wrap(String.UTF8.encode(order[k])));
    const v = new Uint8Array(4);
    store<u32>(v.dataStart, counts.get(order[k]));
    parts.push(v);
  }
  output(frames.join(parts));
  return 0;
}
