// Unit suite: the snapshot rewrite and the in-place reset, driven directly on this thread so
// that an instance's memory can be compared with its snapshot byte for byte.
import binaryen from 'binaryen';
import { describe, expect, it } from 'vitest';
import { buildGuest } from '../runtime/build.js';
import type { FunctionSpec } from '../runtime/protocol.js';
import { GuestInstance, type InstanceEnv } from '../runtime/worker/instance.js';
import { localEnv, snapshotHere } from '../runtime/worker/local.js';
import { guestBytes } from './helpers.js';

const environment = localEnv;

async function prepare(name: string, bytes: Uint8Array, env: InstanceEnv): Promise<FunctionSpec> {
  return (await snapshotHere(name, bytes, env)).spec;
}

/** A deterministic stream of pseudo-random 32-bit numbers. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function ops(list: [op: number, offset: number][]): Uint8Array {
  const out = new Uint8Array(list.length * 5);
  const view = new DataView(out.buffer);
  list.forEach(([op, offset], i) => {
    out[i * 5] = op;
    view.setUint32(i * 5 + 1, offset, true);
  });
  return out;
}

function expectAtSnapshot(instance: GuestInstance, spec: FunctionSpec): void {
  const now = instance.capture();
  const snapshot = spec.snapshot!;
  expect(now.pages).toBe(snapshot.pages);
  expect(now.globals).toEqual(snapshot.globals);
  // Compare as a whole first (fast), then name the first differing byte if any.
  const a = Buffer.from(now.image);
  const b = Buffer.from(snapshot.image);
  if (!a.equals(b)) {
    const at = a.findIndex((byte, i) => byte !== b[i]);
    expect({ at, byte: a[at] }).toEqual({ at, byte: b[at] });
  }
}

describe('snapshot rewrite and in-place reset', () => {
  it('restores an instance that equals its snapshot, and resets every kind of store back to it', async () => {
    const env = environment();
    const spec = await prepare('stores', guestBytes('snapshot_stores'), env);
    expect(spec.layout.tracked).toBe(true);
    expect(spec.layout.globalTypes.length).toBeGreaterThan(3);
    const instance = GuestInstance.restore(spec, env);
    expectAtSnapshot(instance, spec);
    const next = random(12345);
    for (let round = 0; round < 40; round++) {
      const list: [number, number][] = [];
      for (let k = 0; k < 1 + (next() % 30); k++) list.push([next() % 10, next()]);
      // Block edges explicitly: a wide store that starts in the last bytes of a block.
      list.push([12, next()], [13, next()], [11, next()]);
      const code = instance.call(ops(list), round + 1, Infinity);
      expect(code).toBe(0);
      instance.finish();
      expect(instance.reset()).toBe(true);
      expectAtSnapshot(instance, spec);
    }
    instance.dispose();
    expect(env.live).toBe(0);
  });

  it('marks a bulk write before it happens: a stack overflow at any depth leaves nothing unmarked', async () => {
    const env = environment();
    // Built at -O3 (the suite's guests are built at -O1): its frame sizes put the overflow on
    // the call to the mark helper at some depths, where an older rewrite left a write unmarked.
    const source = new URL('./guests/snapshot_overflow.ts', import.meta.url).pathname;
    const spec = await prepare('overflow', await buildGuest(source), env);
    const instance = GuestInstance.restore(spec, env);
    const arg = (depth: number, pad: number): Uint8Array => {
      const bytes = new Uint8Array(9);
      bytes[0] = 0x4f;
      new DataView(bytes.buffer).setInt32(1, depth, true);
      new DataView(bytes.buffer).setInt32(5, pad, true);
      return bytes;
    };
    const traps = (depth: number, pad: number): boolean => {
      let trapped = false;
      try {
        instance.call(arg(depth, pad), 1, Infinity);
        instance.finish();
      } catch {
        instance.failed();
        trapped = true;
      }
      expect(instance.reset()).toBe(true);
      return trapped;
    };
    let probes = 0;
    // Around the depth where the stack runs out, the overflow lands on every call of the
    // write path in turn, the mark helper's included.
    for (let pad = 0; pad < 6; pad++) {
      let lo = 1;
      let hi = 1 << 20;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (traps(mid, pad)) hi = mid;
        else lo = mid;
      }
      for (let depth = hi - 3; depth <= hi + 3; depth++) {
        traps(depth, pad);
        probes++;
        expectAtSnapshot(instance, spec);
      }
    }
    expect(probes).toBe(42);
  });

  it('does not reset in place a call that grew the memory', async () => {
    const env = environment();
    const spec = await prepare('stores', guestBytes('snapshot_stores'), env);
    const instance = GuestInstance.restore(spec, env);
    instance.call(ops([[10, 0]]), 1, Infinity);
    instance.finish();
    expect(instance.reset()).toBe(false);
    instance.dispose();
  });

  it('gives a module it cannot track a start section, data, globals — and replaces instead of resetting', async () => {
    const wat = `(module
      (import "nuvola:io" "output_write" (func $out (param i32 i32)))
      (memory (export "memory") 1)
      (table 1 funcref)
      (global $g (mut i32) (i32.const 7))
      (data (i32.const 16) "hi")
      (func $start (global.set $g (i32.const 40)))
      (start $start)
      (func (export "main") (result i32)
        (table.set 0 (i32.const 0) (ref.null func))
        (i32.store (i32.const 100) (global.get $g))
        (global.set $g (i32.add (global.get $g) (i32.const 1)))
        (call $out (i32.const 16) (i32.const 2))
        (i32.load (i32.const 100))))`;
    const module = binaryen.parseText(wat);
    module.setFeatures(binaryen.Features.All);
    const bytes = module.emitBinary();
    module.dispose();
    const env = environment();
    const spec = await prepare('raw', bytes, env);
    expect(spec.layout.tracked).toBe(false);
    expect(spec.layout.resetNote).toMatch(/table/);
    expect(spec.layout.hasStart).toBe(true);
    expect(spec.snapshot!.globals).toEqual([40]);
    const instance = GuestInstance.restore(spec, env);
    expect(instance.call(new Uint8Array(0), 1, Infinity)).toBe(40);
    expect(new TextDecoder().decode(instance.finish())).toBe('hi');
    expect(instance.reset()).toBe(false);
  });
});
