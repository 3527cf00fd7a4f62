import { region, Region, inputString, outputString, sleep } from "nuvola";
// One region operation per call, chosen by the input "op key size [a] [b]"; each maps `key` at `size` first.
export function main(): i32 {
  const parts = inputString().split(" ");
  const op = parts[0];
  const key = parts[1];
  const size = I32.parseInt(parts[2]);
  const a = parts.length > 3 ? I32.parseInt(parts[3]) : 0;
  const b = parts.length > 4 ? I32.parseInt(parts[4]) : 0;
  if (op == "stale") {
    // slot `size` without mapping anything in this call: whatever an earlier call mapped there is gone
    outputString(Region.fromSlot(size).getU8(0).toString());
    return 0;
  }
  const r = region.map(key, size);
  if (op == "size") {
    outputString(r.size().toString());
  } else if (op == "fill") {
    // every byte := a, through each width of store
    const n = r.size();
    let i = 0;
    for (; i + 8 <= n && i < 64; i += 8) r.setF64(i, reinterpret<f64>(<u64>0x0101010101010101 * <u64>(a & 0xff)));
    for (; i + 4 <= n && i < 128; i += 4) r.setI32(i, <i32>(<u32>0x01010101 * <u32>(a & 0xff)));
    for (; i < n; i++) r.setU8(i, <u8>a);
    outputString(n.toString());
  } else if (op == "sum") {
    // the sum of every byte the guest can read
    let s: i64 = 0;
    const n = r.size();
    for (let i = 0; i < n; i++) s += <i64>r.getU8(i);
    outputString(s.toString());
  } else if (op == "get") {
    outputString(r.getI32(a).toString());
  } else if (op == "getU8") {
    outputString(r.getU8(a).toString());
  } else if (op == "getF64") {
    outputString(r.getF64(a).toString());
  } else if (op == "set") {
    r.setI32(a, b);
  } else if (op == "setF32") {
    r.setF32(a, <f32>b);
    outputString(r.getF32(a).toString());
  } else if (op == "add") {
    // `a` atomic increments of the i32 at 0, in `b` bursts with a suspension between them (calls interleave)
    for (let k = 0; k < b; k++) {
      for (let i = 0; i < a / b; i++) r.atomicAddI32(0, 1);
      sleep(0);
    }
  } else if (op == "addAt") {
    r.atomicAddI32(a, 1);
  } else if (op == "cas") {
    outputString(r.compareExchangeI32(0, a, b).toString());
  } else if (op == "grow") {
    r.grow(a);
    outputString(r.size().toString());
  } else if (op == "remap") {
    // the same key again, larger: the same slot, grown
    const again = region.map(key, a);
    outputString(again.slot == r.slot ? again.size().toString() : "another slot");
  } else if (op == "copy") {
    // writeFrom a pattern at `a`, readInto it back, and return how many bytes came back equal
    const src = new Uint8Array(b);
    for (let i = 0; i < b; i++) src[i] = <u8>(i * 13 + 5);
    r.writeFrom(a, src);
    const dst = new Uint8Array(b);
    r.readInto(a, dst);
    let same = 0;
    for (let i = 0; i < b; i++) if (dst[i] == src[i]) same++;
    outputString(same.toString());
  } else if (op == "readInto") {
    const dst = new Uint8Array(b);
    r.readInto(a, dst);
  } else if (op == "hold") {
    // signals 1 at offset 0, then holds the map until the host writes 2 there
    r.setI32(0, 1);
    while (r.getI32(0) != 2) sleep(1);
    outputString("released");
  } else if (op == "spin") {
    // signals 1 at offset 0, then spins on this thread (never suspending) until another worker writes 2 there
    r.setI32(0, 1);
    while (r.getI32(0) != 2) {}
    outputString(r.size().toString());
  } else if (op == "many") {
    // maps keys key0 … key{a-1} (all granted by a prefix)
    for (let i = 0; i < a; i++) region.map(key + i.toString(), size);
    outputString(a.toString());
  } else {
    return 1;
  }
  return 0;
}
