import { input, outputString } from "nuvola";
// Isolation probe. "W" + 16 bytes: writes the bytes into a global, a static buffer and a
// heap copy. "G" + 16 bytes: the same, after growing the memory by a large allocation.
// "T" + 16 bytes: writes them, then traps.
// "R" + the 16 bytes XOR 0x55: scans the whole linear memory for the secret (never holding
// it in clear) and reports what it finds.
let secretGlobal: u64 = 0;
const area = new Uint8Array(20000);
let kept: Uint8Array | null = null;
let big: Uint8Array | null = null;

function write(arg: Uint8Array): void {
  secretGlobal = load<u64>(arg.dataStart + 1);
  for (let i = 0; i < 16; i++) area[100 + i] = arg[1 + i];
  kept = arg.slice(1);
}

export function main(): i32 {
  const arg = input();
  if (arg.length != 17) return 2;
  const mode = arg[0];
  if (mode == 0x57) {
    write(arg);
    outputString("written");
    return 0;
  }
  if (mode == 0x54) {
    write(arg);
    unreachable();
  }
  if (mode == 0x47) {
    const grown = new Uint8Array(1 << 20);
    for (let i = 0; i < 16; i++) grown[500000 + i] = arg[1 + i];
    big = grown;
    write(arg);
    outputString("written");
    return 0;
  }
  let found = 0;
  const end: usize = (<usize>memory.size()) << 16;
  for (let p: usize = 0; p + 16 <= end; p++) {
    let j = 0;
    while (j < 16 && load<u8>(p + j) == (arg[1 + j] ^ 0x55)) j++;
    if (j == 16) found++;
  }
  outputString(
    found.toString() +
      (secretGlobal != 0 ? " global-set" : " global-clean") +
      (kept == null ? " kept-clean" : " kept-set") +
      (big == null ? " big-clean" : " big-set") +
      " pages=" +
      memory.size().toString(),
  );
  return 0;
}
