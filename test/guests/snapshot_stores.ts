import { input } from "nuvola";
// Writes memory with every kind of store the dirty tracking must see, at offsets taken from
// the input: 5-byte records of (op, u32 offset). Op 10 grows the memory; 12 and 13 store
// across a block edge.
let counter: i64 = 0;
let ratio: f64 = 1.5;
let small: f32 = 0.25;
const area = new ArrayBuffer(300000);

export function init(): void {
  // Room in the heap, so a call's own allocations do not grow the memory.
  heap.free(heap.alloc(200000));
}

export function main(): i32 {
  const args = input();
  const base = changetype<usize>(area);
  for (let i = 0; i + 5 <= args.length; i += 5) {
    const op = args[i];
    const p = base + <usize>(load<u32>(args.dataStart + i + 1) % 290000);
    switch (op) {
      case 0: store<u8>(p, 0xab); break;
      case 1: store<u16>(p, 0xabcd); break;
      case 2: store<u32>(p, 0xdeadbeef); break;
      case 3: store<u64>(p, 0x0123456789abcdef); break;
      case 4: store<f32>(p, 3.5); break;
      case 5: store<f64>(p, 2.25); break;
      case 6: memory.fill(p, 0x77, 5000); break;
      case 7: memory.copy(p, base + 5, 60); break;
      case 8: v128.store(p, i32x4.splat(0x11223344)); break;
      case 9: store<u64>(p, 0xffffffffffffffff, 4000); break;
      case 10: memory.grow(1); break;
      case 11: store<u8>(<usize>(load<u32>(args.dataStart + i + 1) % 1024), 0x5a); break;
      // Wide stores that start in the last bytes of a 4 KiB block and end in the next.
      case 12: v128.store(((p + 4095) & ~4095) - 3, i32x4.splat(0x55667788)); break;
      case 13: store<u64>(((p + 4095) & ~4095) - 1, 0x8877665544332211); break;
      default: break;
    }
  }
  counter += 1;
  ratio *= 2;
  small += 1;
  return 0;
}
