import { describe, expect, it } from 'vitest';
import { capMemory } from '../runtime/wasm-binary.js';
import { guestBytes } from './helpers.js';

// (module (memory 2)) and (module (memory 1 100)), hand-assembled.
const noMax = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05, 0x03, 0x01, 0x00, 0x02]);
const withMax = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05, 0x04, 0x01, 0x01, 0x01, 0x64]);

/** The maximum a (rewritten) module declares, read back by parsing it again. */
function maxOf(bytes: Uint8Array): number | undefined {
  return capMemory(bytes, 65536).declared?.maximumPages;
}

describe('capMemory', () => {
  it('adds a maximum to a memory that had none', () => {
    const { bytes, declared } = capMemory(noMax, 300);
    expect(declared).toMatchObject({ initialPages: 2, maximumPages: undefined });
    expect(WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)).toBe(true);
    expect(maxOf(bytes)).toBe(300);
  });

  it('keeps a declared maximum that is already lower, and lowers a higher one', () => {
    expect(maxOf(capMemory(withMax, 1000).bytes)).toBe(100);
    expect(maxOf(capMemory(withMax, 10).bytes)).toBe(10);
  });

  it('rewrites a real guest so the engine refuses to grow past the cap', () => {
    const { bytes } = capMemory(guestBytes('core_hello'), 3);
    const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    const stub = () => 0;
    const instance = new WebAssembly.Instance(module, {
      env: { abort: stub, trace: stub, seed: stub },
      'nuvola:io': { input_size: stub, input_read: stub, output_write: stub, log: stub, sleep: stub },
    });
    const memory = instance.exports['memory'] as WebAssembly.Memory;
    const pages = memory.buffer.byteLength / 65536;
    expect(() => memory.grow(3 - pages)).not.toThrow();
    expect(() => memory.grow(1)).toThrow(RangeError);
  });
});
