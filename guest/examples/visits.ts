import { state, inputString, outputString } from "nuvola";

// Counts visits per page with an atomic counter in the global tier: one round trip, no lock,
// and exact however many instances, workers and hosts (sharing one Redis) count at once.
export function main(): i32 {
  const page = inputString();
  const n = state.incrementGlobal("visits:" + page, 1);
  outputString(page + " has " + n.toString() + " visits");
  return 0;
}
