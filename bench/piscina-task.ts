// The piscina baseline's task: the same trivial work as bench/guests/empty.ts, in plain JS.
export default function task(_input: Uint8Array): number {
  return 0;
}
