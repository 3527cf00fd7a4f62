import { clock, input, output } from "nuvola";

// What every suite guest answers: the nanoseconds its work took, measured inside the
// function (SeBS's "execution time"), as a little-endian u64, then its output.

/** When the work starts: read before the input. */
export function start(): i64 {
  return clock.monotonicNs();
}

/** The input bytes. */
export function read(): Uint8Array {
  return input();
}

/** Writes the timing header (since `started`) and `payload`. */
export function respond(started: i64, payload: Uint8Array): void {
  const ns = clock.monotonicNs() - started;
  const out = new Uint8Array(8 + payload.length);
  store<i64>(out.dataStart, ns);
  memory.copy(out.dataStart + 8, payload.dataStart, <usize>payload.length);
  output(out);
}

/** A growable byte buffer (what the guests build their outputs in). */
export class Bytes {
  buf: Uint8Array = new Uint8Array(1024);
  length: i32 = 0;

  constructor(capacity: i32 = 1024) {
    this.buf = new Uint8Array(max(capacity, 16));
  }

  private room(n: i32): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    memory.copy(next.dataStart, this.buf.dataStart, <usize>this.length);
    this.buf = next;
  }

  byte(b: i32): void {
    this.room(1);
    unchecked((this.buf[this.length++] = <u8>b));
  }

  /** Appends ASCII/UTF-16 text as UTF-8. */
  str(s: string): void {
    const n = String.UTF8.byteLength(s);
    this.room(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.buf.dataStart + <usize>this.length);
    this.length += n;
  }

  /** Appends an unsigned integer in decimal. */
  uint(v: u64): void {
    if (v >= 10) this.uint(v / 10);
    this.byte(<i32>(v % 10) + 48);
  }

  u32(v: u32): void {
    this.room(4);
    store<u32>(this.buf.dataStart + <usize>this.length, v);
    this.length += 4;
  }

  f64(v: f64): void {
    this.room(8);
    store<f64>(this.buf.dataStart + <usize>this.length, v);
    this.length += 8;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    memory.copy(this.buf.dataStart + <usize>this.length, b.dataStart, <usize>b.length);
    this.length += b.length;
  }

  /** Appends `n` bytes from `ptr`. */
  raw(ptr: usize, n: i32): void {
    this.room(n);
    memory.copy(this.buf.dataStart + <usize>this.length, ptr, <usize>n);
    this.length += n;
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** xorshift32, the same steps as bench/suite/random.ts. */
export class Xorshift32 {
  x: u32;
  constructor(seed: u32) {
    this.x = seed == 0 ? 1 : seed;
  }
  next(): u32 {
    let x = this.x;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    this.x = x;
    return x;
  }
}
