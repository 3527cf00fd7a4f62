import { inputString, outputString } from "nuvola";
// init() does the expensive start-up once per registration (here: a 5000-entry table); every
// instance starts from the snapshot taken after it. `lastCaller` shows what a reset does: with
// the default reuse 'reset' no call ever sees the previous caller; with 'keep' it does.
const names = new Map<i32, string>();
let lastCaller = "";

export function init(): void {
  for (let i = 0; i < 5000; i++) names.set(i, "guest-" + i.toString());
}

export function main(): i32 {
  const caller = inputString();
  const seen = lastCaller.length > 0 ? lastCaller : "nobody";
  lastCaller = caller;
  outputString("hello " + caller + " (" + names.get(caller.length) + "); previous caller: " + seen);
  return 0;
}
