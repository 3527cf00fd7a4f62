import { clock, inputString, output, random } from "nuvola";
@external("nuvola:sys", "random_bytes")
declare function random_bytes_raw(ptr: usize, len: i32): void;

// A buffer in the snapshot, all zeros: the host fills it in a call, and the reset must undo that.
const kept = new Uint8Array(32);

function le64(value: u64): Uint8Array {
  const out = new Uint8Array(8);
  store<u64>(out.dataStart, value);
  return out;
}

// Runs one nuvola:sys operation named by its input.
export function main(): i32 {
  const mode = inputString();
  if (mode == "clock") {
    const a = clock.monotonicNs();
    const b = clock.monotonicNs();
    if (b < a) return 1;
    output(le64(<u64>b));
  } else if (mode.startsWith("bytes:")) {
    output(random.bytes(I32.parseInt(mode.slice(6))));
  } else if (mode == "u64") {
    output(le64(random.u64()));
  } else if (mode == "kept") {
    // What the snapshot holds, then filled in place.
    const before = kept.slice();
    random.fill(kept);
    output(before);
  } else if (mode == "past-end") {
    random_bytes_raw(<usize>memory.size() * 65536 - 4, 64);
  } else if (mode == "huge-pointer") {
    random_bytes_raw(0xfffffff0, 32);
  } else if (mode == "negative-length") {
    random_bytes_raw(16, -1);
  }
  return 0;
}
