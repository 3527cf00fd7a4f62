import { chain, output } from "nuvola";
import { read, respond, start } from "../../guests/timed";

// ServerlessBench's Array Sum chain (bench/suite/array-sum/reference.ts). Input: u32 mode
// (0 one stage, 1 an entry calling every stage in turn, 2 a stage that calls the next), u32
// stage, u32 stages, u32 timed (write the timing header), then the i32 values.
const HEADER = 16;

function work(values: usize, n: i32, s: i32): void {
  for (let i = 0; i < n; i++) {
    const at = values + (<usize>i << 2);
    store<i32>(at, load<i32>(at) * 31 + i + s);
  }
}

function header(bytes: Uint8Array, mode: u32, stage: u32, stages: u32): void {
  store<u32>(bytes.dataStart, mode);
  store<u32>(bytes.dataStart, stage, 4);
  store<u32>(bytes.dataStart, stages, 8);
  store<u32>(bytes.dataStart, 0, 12);
}

function answer(t: i64, timed: bool, values: Uint8Array): void {
  if (timed) respond(t, values);
  else output(values);
}

export function main(): i32 {
  const t = start();
  const bytes = read();
  const mode = load<u32>(bytes.dataStart);
  const stage = load<u32>(bytes.dataStart, 4);
  const stages = load<u32>(bytes.dataStart, 8);
  const timed = load<u32>(bytes.dataStart, 12) != 0;
  const n = (bytes.length - HEADER) >> 2;
  if (mode == 0) {
    work(bytes.dataStart + HEADER, n, stage);
    answer(t, timed, bytes.subarray(HEADER));
    return 0;
  }
  if (mode == 1) {
    let values = bytes.subarray(HEADER);
    for (let s: u32 = 0; s < stages; s++) {
      const next = new Uint8Array(HEADER + values.length);
      header(next, 0, s, stages);
      memory.copy(next.dataStart + HEADER, values.dataStart, <usize>values.length);
      const id = chain.call("array_sum", next);
      if (chain.wait(id) != 0) return 1;
      values = chain.output(id);
    }
    answer(t, timed, values);
    return 0;
  }
  work(bytes.dataStart + HEADER, n, stage);
  if (stage + 1 >= stages) {
    answer(t, timed, bytes.subarray(HEADER));
    return 0;
  }
  header(bytes, 2, stage + 1, stages);
  const id = chain.call("array_sum", bytes);
  if (chain.wait(id) != 0) return 1;
  answer(t, timed, chain.output(id));
  return 0;
}
