/**
 * Main thread. A cursor over the bytes of one section of a Wasm module: what the rewrite
 * (rewrite.ts) and the check of a component's other core modules (core-state.ts) both read.
 * What it cannot read fails with the caller's own error.
 */
import { readLeb } from '../wasm-binary.js';

export class SectionReader {
  constructor(
    readonly bytes: Uint8Array,
    /** The error for bytes that cannot be read (truncated, an unknown opcode). */
    private readonly fail: (why: string) => Error,
    public pos = 0,
  ) {}

  byte(): number {
    const b = this.bytes[this.pos++];
    if (b === undefined) throw this.fail('a truncated section');
    return b;
  }

  leb(): number {
    const r = readLeb(this.bytes, this.pos);
    this.pos = r.next;
    return r.value;
  }

  /** Skips a signed LEB128 of any length. */
  sleb(): void {
    while ((this.byte() & 0x80) !== 0);
  }

  /** A signed LEB128 of an i32. */
  i32(): number {
    let result = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = this.byte();
      result |= (byte & 0x7f) << shift;
      shift += 7;
    } while ((byte & 0x80) !== 0 && shift < 35);
    if (shift < 32 && (byte & 0x40) !== 0) result |= -1 << shift;
    return result | 0;
  }

  skip(n: number): void {
    this.pos += n;
  }

  /** A name (length-prefixed UTF-8) as a string. */
  text(): string {
    const len = this.leb();
    const start = this.pos;
    this.skip(len);
    if (this.pos > this.bytes.length) throw this.fail('a truncated name');
    return new TextDecoder().decode(this.bytes.subarray(start, this.pos));
  }

  name(): void {
    this.skip(this.leb());
  }

  /** A value or reference type: one byte, or a typed reference (0x63/0x64 and a heap type). */
  valType(): void {
    const t = this.byte();
    if (t === 0x63 || t === 0x64) this.sleb();
  }

  limits(): { initial: number; maximum: number | undefined; flags: number } {
    const flags = this.byte();
    const initial = this.leb();
    return { initial, maximum: flags & 1 ? this.leb() : undefined, flags };
  }

  /** A constant expression up to and including its `end`; returns the value of a lone `i32.const`. */
  constExpr(): number | undefined {
    const start = this.pos;
    let value: number | undefined;
    let count = 0;
    for (;;) {
      const op = this.byte();
      if (op === 0x0b) break;
      count++;
      if (op === 0x41) value = this.i32();
      else if (op === 0x42 || op === 0x23 || op === 0xd2 || op === 0xd0) this.sleb();
      else if (op === 0x43) this.skip(4);
      else if (op === 0x44) this.skip(8);
      else if (op === 0xfd) {
        const sub = this.leb();
        if (sub !== 12) throw this.fail(`constant expression opcode 0xfd ${sub} at ${start}`);
        this.skip(16);
      } else if (![0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e].includes(op)) {
        throw this.fail(`constant expression opcode 0x${op.toString(16)} at ${start}`);
      }
    }
    return count === 1 ? value : undefined;
  }
}
