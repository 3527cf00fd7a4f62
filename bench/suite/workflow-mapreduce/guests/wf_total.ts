import { frames, input, output } from "nuvola";

// Reduce step: word, framed(counts), … → word, total (u32), … .
export function main(): i32 {
  const groups = frames.split(input());
  const out = new Array<Uint8Array>();
  for (let i = 0; i + 1 < groups.length; i += 2) {
    const counts = frames.split(groups[i + 1]);
    let total: u32 = 0;
    for (let j = 0; j < counts.length; j++) total += load<u32>(counts[j].dataStart);
    const v = new Uint8Array(4);
    store<u32>(v.dataStart, total);
    out.push(groups[i]);
    out.push(v);
  }
  output(frames.join(out));
  return 0;
}
