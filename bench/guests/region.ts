import { region, state, inputString, outputString, clock, sleep } from "nuvola";
// `nuvola bench state`'s region rows, each timed inside the guest (ns on the host's monotonic
// clock, so no call overhead is counted), the result after a space so nothing is optimized away:
// "sum key n reps" / "sumPrivate n reps": sum n f64 from the region / from the guest's own memory;
// "readInto key bytes reps" / "stateRead key bytes reps": copy the value into guest memory by
// the region / by state.readInto; "add key n bursts" / "addPrivate n bursts": n increments of
// one i32 (atomic in the region, plain in own memory), in bursts with a suspension between them
// so the calls on a worker interleave.
let privateF64 = new Float64Array(0);
let buffer = new Uint8Array(0);
const counter = new Int32Array(1);

export function main(): i32 {
  const parts = inputString().split(" ");
  const op = parts[0];
  if (op == "sum") {
    const n = I32.parseInt(parts[2]);
    const reps = I32.parseInt(parts[3]);
    const r = region.map(parts[1], n * 8);
    let s: f64 = 0;
    const t = clock.monotonicNs();
    for (let k = 0; k < reps; k++) for (let i = 0; i < n; i++) s += r.getF64(i << 3);
    outputString((clock.monotonicNs() - t).toString() + " " + s.toString());
  } else if (op == "sumPrivate") {
    const n = I32.parseInt(parts[1]);
    const reps = I32.parseInt(parts[2]);
    if (privateF64.length != n) {
      privateF64 = new Float64Array(n);
      for (let i = 0; i < n; i++) privateF64[i] = <f64>(i & 7);
    }
    let s: f64 = 0;
    const base = privateF64.dataStart;
    const t = clock.monotonicNs();
    for (let k = 0; k < reps; k++) for (let i = 0; i < n; i++) s += load<f64>(base + (<usize>i << 3));
    outputString((clock.monotonicNs() - t).toString() + " " + s.toString());
  } else if (op == "readInto" || op == "stateRead") {
    const bytes = I32.parseInt(parts[2]);
    const reps = I32.parseInt(parts[3]);
    if (buffer.length != bytes) buffer = new Uint8Array(bytes);
    let t: i64;
    if (op == "readInto") {
      const r = region.map(parts[1], bytes);
      t = clock.monotonicNs();
      for (let k = 0; k < reps; k++) r.readInto(0, buffer);
    } else {
      t = clock.monotonicNs();
      for (let k = 0; k < reps; k++) state.readInto(parts[1], 0, buffer);
    }
    // The destination's address: memcpy speed depends on where it lies relative to the source.
    outputString((clock.monotonicNs() - t).toString() + " " + buffer.dataStart.toString() + " " + buffer[bytes - 1].toString());
  } else if (op == "selfCopy") {
    const bytes = I32.parseInt(parts[1]);
    const reps = I32.parseInt(parts[2]);
    const a = new Uint8Array(bytes);
    const b = new Uint8Array(bytes);
    const t = clock.monotonicNs();
    for (let k = 0; k < reps; k++) memory.copy(b.dataStart, a.dataStart, bytes);
    outputString((clock.monotonicNs() - t).toString() + " " + b[0].toString());
  } else if (op == "add" || op == "addPrivate") {
    const n = I32.parseInt(parts[2]);
    const bursts = I32.parseInt(parts[3]);
    const per = n / bursts;
    let ns: i64 = 0;
    if (op == "add") {
      const r = region.map(parts[1], 64);
      for (let b = 0; b < bursts; b++) {
        const t = clock.monotonicNs();
        for (let i = 0; i < per; i++) r.atomicAddI32(0, 1);
        ns += clock.monotonicNs() - t;
        sleep(0);
      }
    } else {
      const p = counter.dataStart;
      for (let b = 0; b < bursts; b++) {
        const t = clock.monotonicNs();
        for (let i = 0; i < per; i++) store<i32>(p, load<i32>(p) + 1);
        ns += clock.monotonicNs() - t;
        sleep(0);
      }
    }
    outputString(ns.toString() + " " + counter[0].toString());
  } else {
    return 1;
  }
  return 0;
}
