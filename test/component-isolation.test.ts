// Isolation between calls of a component (reuse: 'reset'): what jco's glue writes into guest
// memory and what a component's other core modules hold must not reach the next call. The
// components are written by hand (core modules in WAT, or a whole component in the component
// text format) and built with jco's bundled wasm-tools, like test/component.test.ts's.
import { describe, expect, it } from 'vitest';
import { parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { ErrorCode, NuvolaError } from 'nuvola';
import { buildComponent, ECHO_COMPONENT_WAT } from '../bench/components.js';
import { coreModuleState } from '../runtime/snapshot/core-state.js';
import { closedAfterEach, text } from './helpers.js';

const runtime = closedAfterEach();

/**
 * `run` of the isolation probe. Input "R" + bytes XOR 0x55: counts where the decoded bytes
 * occur in the whole memory (never holding them in clear) and returns the count as a digit.
 * Any other input returns "written"; with `copyTo`, it first copies the input there (a store
 * of this module's own). The result area is at 16 and the digit at 32: block 0 of the memory,
 * away from the input, which realloc places at 8192 (block 2). So a reset that restores only
 * the blocks the guest's stores marked leaves the input where the glue wrote it.
 */
function probeRun(copyTo?: number): string {
  const copy = copyTo === undefined ? '' : `(memory.copy (i32.const ${copyTo}) (local.get $ptr) (local.get $len))`;
  return `(func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (local $p i32) (local $j i32) (local $n i32) (local $found i32) (local $end i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (if (i32.ne (i32.load8_u (local.get $ptr)) (i32.const 82))
      (then
        ${copy}
        (i32.store (i32.const 20) (i32.const 64))
        (i32.store (i32.const 24) (i32.const 7))
        (return (i32.const 16))))
    (local.set $n (i32.sub (local.get $len) (i32.const 1)))
    (local.set $end (i32.sub (i32.mul (memory.size) (i32.const 65536)) (local.get $n)))
    (block $done
      (loop $scan
        (br_if $done (i32.gt_u (local.get $p) (local.get $end)))
        (local.set $j (i32.const 0))
        (block $miss
          (loop $cmp
            (br_if $miss (i32.ge_u (local.get $j) (local.get $n)))
            (br_if $miss
              (i32.ne
                (i32.load8_u (i32.add (local.get $p) (local.get $j)))
                (i32.xor (i32.load8_u (i32.add (i32.add (local.get $ptr) (i32.const 1)) (local.get $j))) (i32.const 0x55))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $cmp)))
        (if (i32.eq (local.get $j) (local.get $n)) (then (local.set $found (i32.add (local.get $found) (i32.const 1)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $scan)))
    (i32.store8 (i32.const 32) (i32.add (i32.const 48) (local.get $found)))
    (i32.store (i32.const 20) (i32.const 32))
    (i32.store (i32.const 24) (i32.const 1))
    (i32.const 16))`;
}

/** The memory-owning module's memory, bump allocator (from 8192) and post-return. */
const MEMORY_AND_REALLOC = `(memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 8192))
    (data (i32.const 64) "written")
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $heap) (i32.const 65536)) (then unreachable))
      (local.get $p))
    (func (export "cabi_post_run") (param i32))`;

/** component_probe: one core module; the only copy of the input is the one the glue wrote. */
const PROBE_WAT = `(module
  ${MEMORY_AND_REALLOC}
  ${probeRun()}
)`;

/** Lifts `$run` as nuvola's `run`, with the memory and realloc of core instance `$m`. */
const LIFT_RUN = `(alias core export $m "memory" (core memory $mem))
  (alias core export $m "cabi_realloc" (core func $realloc))
  (alias core export $m "cabi_post_run" (core func $post))
  (func (export "run") (param "input" (list u8)) (result (result (list u8) (error string)))
    (canon lift (core func $run) (memory $mem) (realloc $realloc) (post-return $post)))`;

/**
 * component_counter: its `run` returns, as a digit, what a second core module's `next` returns:
 * a counter in a mutable global of that module, which has no memory.
 */
const COUNTER_COMPONENT = `(component
  (core module $counter
    (global $n (mut i32) (i32.const 0))
    (func (export "next") (result i32)
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (global.get $n)))
  (core module $main
    (import "counter" "next" (func $next (result i32)))
    ${MEMORY_AND_REALLOC}
    (func (export "run") (param i32 i32) (result i32)
      (i32.store8 (i32.const 32) (i32.add (i32.const 48) (call $next)))
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 32))
      (i32.store (i32.const 24) (i32.const 1))
      (i32.const 16)))
  (core instance $c (instantiate $counter))
  (core instance $m (instantiate $main (with "counter" (instance $c))))
  (alias core export $m "run" (core func $run))
  ${LIFT_RUN}
)`;

/**
 * component_writer: the probe's `run` in a second core module that imports the first one's
 * memory (as an adapter module does); its "W" copies the input to 40000 (block 9) with a bulk
 * copy no rewrite of this module marks.
 */
const WRITER_COMPONENT = `(component
  (core module $main
    ${MEMORY_AND_REALLOC})
  (core instance $m (instantiate $main))
  (alias core export $m "memory" (core memory $shared))
  (core instance $env (export "memory" (memory $shared)))
  (core module $writer
    (import "env" "memory" (memory 1))
    ${probeRun(40000)})
  (core instance $w (instantiate $writer (with "env" (instance $env))))
  (alias core export $w "run" (core func $run))
  ${LIFT_RUN}
)`;

/** component_hidden_memory: a second core module with a memory of its own, not exported. */
const HIDDEN_MEMORY_COMPONENT = `(component
  (core module $hidden
    (memory 1)
    (func (export "next") (result i32)
      (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
      (i32.load (i32.const 0))))
  (core module $main
    (import "hidden" "next" (func $next (result i32)))
    ${MEMORY_AND_REALLOC}
    (func (export "run") (param i32 i32) (result i32)
      (i32.store8 (i32.const 32) (i32.add (i32.const 48) (call $next)))
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 32))
      (i32.store (i32.const 24) (i32.const 1))
      (i32.const 16)))
  (core instance $h (instantiate $hidden))
  (core instance $m (instantiate $main (with "hidden" (instance $h))))
  (alias core export $m "run" (core func $run))
  ${LIFT_RUN}
)`;

const SECRET = 'component-secret';
const hidden = (s: string): Uint8Array => Uint8Array.from([0x52, ...Buffer.from(s).map((b) => b ^ 0x55)]);
/** The secret after 100 bytes of padding: past where the next call's shorter input is copied. */
const write = (s: string): Uint8Array => Uint8Array.from([0x57, ...Buffer.from('_'.repeat(100) + s)]);

describe('component isolation between calls', () => {
  it("the input the glue copied in (through the component's realloc) is reset: the next call on the same instance finds no trace", async () => {
    const { rt } = await runtime({ workers: 1 });
    const probe = await buildComponent(PROBE_WAT);
    await rt.register('probe', probe);
    expect(text((await rt.invoke('probe', write(SECRET))).output)).toBe('written');
    const read = await rt.invoke('probe', hidden(SECRET));
    // The reset instance, not a freshly restored one: the reset is what is checked.
    expect(read.cold).toBe(false);
    expect(text(read.output)).toBe('0');

    // The probe can see a leak: with reuse 'keep' the same instance still holds the secret.
    await rt.register('kept', probe, { reuse: 'keep' });
    await rt.invoke('kept', write(SECRET));
    expect(text((await rt.invoke('kept', hidden(SECRET))).output)).toBe('1');
  });

  it('a second core module with a mutable global (and no memory) starts every call from its initial state', async () => {
    const { rt, logs } = await runtime({ workers: 1 });
    const counter = await parse(COUNTER_COMPONENT);
    await rt.register('counter', counter);
    const counts = [];
    for (let i = 0; i < 4; i++) counts.push(text((await rt.invoke('counter', 'next')).output));
    expect(counts).toEqual(['1', '1', '1', '1']);
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        message: expect.stringContaining("core module 'component.core.wasm' keeps a mutable global"),
      }),
    );
    // reuse: 'keep' keeps the instance, its second module's global included.
    await rt.register('kept', counter, { reuse: 'keep' });
    const kept = [];
    for (let i = 0; i < 3; i++) kept.push(Number(text((await rt.invoke('kept', 'next')).output)));
    expect(kept[2]! - kept[0]!).toBe(2);
  });

  it("a second core module that writes the first one's memory (untracked) leaves no trace for the next call", async () => {
    const { rt } = await runtime({ workers: 1 });
    const writer = await parse(WRITER_COMPONENT);
    await rt.register('writer', writer);
    expect(text((await rt.invoke('writer', write(SECRET))).output)).toBe('written');
    expect(text((await rt.invoke('writer', hidden(SECRET))).output)).toBe('0');
    await rt.register('kept', writer, { reuse: 'keep' });
    await rt.invoke('kept', write(SECRET));
    // Two copies: the input the glue wrote and the module's own at 40000.
    expect(text((await rt.invoke('kept', hidden(SECRET))).output)).toBe('2');
  });

  it("jco's own shim modules keep nothing: a component importing log is reset in place, without a warning", async () => {
    const { rt, logs } = await runtime({ workers: 1 });
    await rt.register('echo', await buildComponent(ECHO_COMPONENT_WAT));
    const calls = [];
    for (let i = 0; i < 3; i++) calls.push(await rt.invoke('echo', '#logged'));
    expect(calls.map((c) => c.cold)).toEqual([false, false, false]);
    expect(logs.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('a second core module with a memory of its own (not exported) is refused like a second memory', async () => {
    const { rt } = await runtime({ workers: 1 });
    let error: unknown;
    try {
      await rt.register('hidden', await parse(HIDDEN_MEMORY_COMPONENT));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(NuvolaError);
    expect((error as NuvolaError).code).toBe(ErrorCode.INVALID_MODULE);
    expect((error as NuvolaError).message).toContain('more than one memory');
    expect(rt.functions()).toEqual([]);
  });
});

describe('coreModuleState: what a core module other than the memory-owning one keeps', () => {
  const state = async (body: string): Promise<ReturnType<typeof coreModuleState>> => coreModuleState(await parse(`(module ${body})`));

  it("a table filled at instantiation and calls through it keep nothing (jco's shim and fixup)", async () => {
    expect(
      await state('(type $t (func)) (table (export "t") 1 1 funcref) (func (export "f") (call_indirect (type $t) (i32.const 0)))'),
    ).toEqual({
      definesMemory: false,
      kept: undefined,
    });
    expect(await state('(import "a" "f" (func $f)) (import "a" "t" (table 1 1 funcref)) (elem (i32.const 0) func $f)')).toEqual({
      definesMemory: false,
      kept: undefined,
    });
    expect((await state('(global $k i32 (i32.const 7)) (func (export "k") (result i32) (global.get $k))')).kept).toBeUndefined();
  });

  it('names what it keeps: a mutable global, a memory (imported or its own), an imported mutable global, table writes', async () => {
    expect((await state('(global $n (mut i64) (i64.const 0))')).kept).toBe('keeps a mutable global');
    expect((await state('(import "env" "memory" (memory 1))')).kept).toBe('imports a memory and writes to it are not tracked');
    expect(await state('(memory 1)')).toEqual({ definesMemory: true, kept: 'defines a memory of its own' });
    expect((await state('(import "env" "g" (global (mut i32)))')).kept).toBe('imports a mutable global');
    expect((await state('(table 1 funcref) (func (table.set (i32.const 0) (ref.null func)))')).kept).toBe('uses table.set in its code');
    expect((await state('(table 1 funcref) (func (drop (table.grow (ref.null func) (i32.const 1))))')).kept).toContain(
      'tables or dropped segments',
    );
  });
});
