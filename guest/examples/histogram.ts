import { region, inputString, outputString } from "nuvola";

// Counts the bytes of its input into one histogram that every instance maps in place: the
// state key "hist:bytes" (256 i32 counters) is a shared memory region, so each count is one
// atomic add on the host's memory — no host call, no copy — and calls on both workers add to
// the same counters at once, exactly.
export function main(): i32 {
  const text = String.UTF8.encode(inputString());
  const bytes = Uint8Array.wrap(text);
  const hist = region.map("hist:bytes", 256 * 4);
  for (let i = 0; i < bytes.length; i++) hist.atomicAddI32(<i32>bytes[i] << 2, 1);
  outputString(bytes.length.toString());
  return 0;
}
