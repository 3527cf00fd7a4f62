import { describe, expect, it, vi } from 'vitest';
import type { NuvolaError, Runtime } from 'nuvola';
import {
  dc,
  farm,
  frame,
  gathers,
  iterate,
  map,
  mapReduce,
  partitions,
  pipe,
  reduce,
  run,
  runAll,
  runStream,
  seq,
  register,
  unframe,
  type Skeleton,
} from 'nuvola/skeletons';
import { closedAfterEach, guestBytes, text } from './helpers.js';
import { readU32s, u32s } from './skeleton-helpers.js';

const track = closedAfterEach();

/** double (each u32 × 2), sum (framed u32s → u32), faulty (echo; first byte 13 traps, 7 returns 7), counter. */
async function start(): Promise<Runtime> {
  const { rt } = await track({ workers: 2 });
  await rt.register('double', guestBytes('skel_double'));
  await rt.register('sum', guestBytes('skel_sum'));
  await rt.register('faulty', guestBytes('skel_faulty'));
  await rt.register('counter', guestBytes('core_counter'));
  await rt.register('sleep', guestBytes('core_sleep'));
  return rt;
}

const calls = (rt: Runtime): number => rt.stats().completed + rt.stats().failed;
const byte = (i: number): Uint8Array => new Uint8Array([i, 0, 0, 0]);

async function rejection(promise: Promise<unknown>): Promise<NuvolaError> {
  try {
    await promise;
  } catch (err) {
    return err as NuvolaError;
  }
  throw new Error('expected a rejection');
}

function thrown(fn: () => unknown): NuvolaError {
  try {
    fn();
  } catch (err) {
    return err as NuvolaError;
  }
  throw new Error('expected a throw');
}

/** After a failure: nothing in flight, a plain invoke and a fresh skeleton run both work. */
async function expectHealthy(rt: Runtime): Promise<void> {
  expect(rt.stats().inflight).toBe(0);
  const r = await rt.invoke('double', u32s(21));
  expect(r.returnCode).toBe(0);
  expect(readU32s(r.output)).toEqual([42]);
  const outs = await runAll(rt, pipe(farm('double'), 'faulty'), [u32s(1), u32s(2), u32s(3)]);
  expect(outs.map(readU32s)).toEqual([[2], [4], [6]]);
}

describe('skeleton errors: unknown functions', () => {
  it('a skeleton naming an unregistered function rejects with E_UNKNOWN_FUNCTION before any call', async () => {
    const rt = await start();
    const before = rt.stats();
    const node = pipe(farm('double'), map(seq('faulty', 'nobody')));
    const err = await rejection(run(rt, node, u32s(1)));
    expect(err.code).toBe('E_UNKNOWN_FUNCTION');
    expect(err.details).toEqual({ function: 'nobody' });
    const streamErr = await rejection(runAll(rt, node, [u32s(1), u32s(2)]));
    expect(streamErr.code).toBe('E_UNKNOWN_FUNCTION');
    for (const bad of [
      reduce('nobody'),
      mapReduce({ mapper: 'double', reducer: 'nobody' }),
      dc('double', 'nobody', 'double', () => true),
      iterate('nobody', { maxIterations: 2 }),
      map('double', { gather: gathers.reduce(reduce('nobody')) }),
    ]) {
      expect((await rejection(run(rt, bad, u32s(1)))).code).toBe('E_UNKNOWN_FUNCTION');
    }
    const after = rt.stats();
    expect(after.completed).toBe(before.completed);
    expect(after.failed).toBe(before.failed);
    expect(after.coldStarts + after.warmStarts).toBe(before.coldStarts + before.warmStarts);
  });

  it('the source of a stream is not read when a function is unknown', async () => {
    const rt = await start();
    let pulled = 0;
    function* source(): Generator<Uint8Array> {
      for (let i = 0; i < 5; i++) {
        pulled++;
        yield u32s(i);
      }
    }
    const err = await rejection(runAll(rt, pipe('double', 'nobody'), source()));
    expect(err.code).toBe('E_UNKNOWN_FUNCTION');
    expect(pulled).toBe(0);
  });
});

describe('skeleton errors: inputs', () => {
  it('an input that is not bytes, a string or undefined is rejected as rt.invoke rejects it (E_INVALID_OPTION)', async () => {
    const rt = await start();
    const bad = 5 as unknown as Uint8Array;
    expect((await rejection(rt.invoke('faulty', bad))).code).toBe('E_INVALID_OPTION');
    const before = calls(rt);
    // run() must not turn 5 into five zero bytes (new Uint8Array(5)), nor { a: 1 } into no bytes.
    expect((await rejection(run(rt, seq('faulty'), bad))).code).toBe('E_INVALID_OPTION');
    expect((await rejection(runAll(rt, seq('faulty'), [{ a: 1 } as unknown as Uint8Array]))).code).toBe('E_INVALID_OPTION');
    expect(calls(rt)).toBe(before);
  });

  it('strings are sent as UTF-8, ArrayBuffers and views as their bytes, undefined as no bytes', async () => {
    const rt = await start();
    const whole = new Uint8Array([1, 2, 3, 4, 5, 6]);
    const outs = await runAll(rt, seq('faulty'), ['héllo', whole.buffer, whole.subarray(2, 4), undefined]);
    expect(outs.map((o) => Array.from(o))).toEqual([Array.from(new TextEncoder().encode('héllo')), [1, 2, 3, 4, 5, 6], [3, 4], []]);
  });
});

describe('skeleton errors: a stage that fails', () => {
  it('a trap mid-stream rejects with E_SKELETON_STAGE naming the function and the item; the runtime serves on', async () => {
    const rt = await start();
    let pulled = 0;
    function* source(): Generator<Uint8Array> {
      // Item i is the byte i (7 would return 7: it becomes 107); faulty traps on item 13.
      for (let i = 0; i < 200; i++) {
        pulled++;
        yield byte(i === 7 ? 107 : i);
      }
    }
    const seen: number[] = [];
    const err = await rejection(
      (async () => {
        for await (const out of runStream(rt, pipe(farm('faulty', { replicas: 2 }), farm('double', { replicas: 2 })), source())) {
          seen.push(readU32s(out)[0]!);
        }
      })(),
    );
    expect(err.code).toBe('E_SKELETON_STAGE');
    expect(err.name).toBe('SkeletonError');
    expect(err.details).toMatchObject({ function: 'faulty', item: 13, where: 'item 13', cause: 'E_GUEST_TRAP' });
    expect((err.cause as NuvolaError).code).toBe('E_GUEST_TRAP');
    expect(err.message).toMatch(/'faulty' failed on item 13/);
    // What was yielded came in order, before item 13.
    expect(seen.length).toBeLessThanOrEqual(13);
    expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => 2 * (i === 7 ? 107 : i)));
    // Nothing new started after the failure: the source was not drained.
    expect(pulled).toBeLessThan(100);
    await expectHealthy(rt);
  });

  it('a trap in a fused seq (one invokeChain) names the function that trapped', async () => {
    const rt = await start();
    const err = await rejection(run(rt, seq('faulty', 'double'), byte(13)));
    expect(err.code).toBe('E_SKELETON_STAGE');
    expect(err.details).toMatchObject({ function: 'faulty', item: 0, cause: 'E_GUEST_TRAP' });
    const streamErr = await rejection(runAll(rt, farm(seq('faulty', 'double', 'faulty')), [byte(1), byte(2), byte(13), byte(3)]));
    expect(streamErr.code).toBe('E_SKELETON_STAGE');
    expect(streamErr.details).toMatchObject({ function: 'faulty', item: 2, cause: 'E_GUEST_TRAP' });
    await expectHealthy(rt);
  });

  it('a stage returning non-zero fails the run with its return code', async () => {
    const rt = await start();
    const direct = await rejection(runAll(rt, pipe('faulty', 'double'), [byte(1), byte(2), byte(7), byte(3)]));
    expect(direct.code).toBe('E_SKELETON_STAGE');
    expect(direct.details).toMatchObject({ function: 'faulty', item: 2, returnCode: 7 });
    expect(direct.message).toMatch(/returned 7/);
    // The same in a fused seq: the chain stops at the non-zero code.
    const fused = await rejection(run(rt, seq('faulty', 'double'), byte(7)));
    expect(fused.details).toMatchObject({ function: 'faulty', item: 0, returnCode: 7 });
    // A part of a map: double returns 1 on 3-byte parts.
    const part = await rejection(run(rt, map('double', { partition: partitions.chunks(2), gather: gathers.concat() }), new Uint8Array(6)));
    expect(part.details).toMatchObject({ function: 'double', item: 0, returnCode: 1 });
    expect(part.details['where']).toMatch(/^item 0, part [01]$/);
    await expectHealthy(rt);
  });

  it('a failing part of a map, and of a map whose gather reduces as results arrive', async () => {
    const rt = await start();
    const parts = frame([byte(1), byte(13), byte(2), byte(3)]);
    const err = await rejection(run(rt, map('faulty'), parts));
    expect(err.details).toMatchObject({ function: 'faulty', item: 0, where: 'item 0, part 1' });
    const fused = map('faulty', { gather: gathers.reduce(reduce('sum', { associative: true, commutative: true })) });
    const err2 = await rejection(run(rt, fused, parts));
    expect(err2.code).toBe('E_SKELETON_STAGE');
    expect(err2.details).toMatchObject({ function: 'faulty', item: 0 });
    // The reduce itself failing: sum returns 1 on a value that is not 4 bytes.
    const err3 = await rejection(run(rt, fused, frame([byte(1), new Uint8Array(3), byte(2)])));
    expect(err3.details).toMatchObject({ function: 'sum', returnCode: 1 });
    expect(readU32s(await run(rt, fused, frame([byte(1), byte(5), byte(2)])))).toEqual([8]);
    await expectHealthy(rt);
  });

  it('predicates, partitions and gathers that throw fail the stage they belong to', async () => {
    const rt = await start();
    const boom = (): never => {
      throw new Error('boom');
    };
    const isBase = await rejection(run(rt, dc('faulty', 'sum', 'double', boom), u32s(1)));
    expect(isBase.details).toMatchObject({ function: 'isBase', item: 0 });
    expect(isBase.message).toMatch(/boom/);
    const until = await rejection(run(rt, iterate('double', { maxIterations: 5, until: boom }), u32s(1)));
    expect(until.details).toMatchObject({ function: 'until', item: 0 });
    const partition = await rejection(runAll(rt, map('double', { partition: partitions.chunks(2, 4) }), [u32s(1, 2), new Uint8Array(5)]));
    expect(partition.code).toBe('E_SKELETON_STAGE');
    expect(partition.details).toMatchObject({ function: 'partition chunks(2,4)', item: 1 });
    const gather = await rejection(run(rt, map('double', { gather: gathers.custom('bad', boom) }), frame([u32s(1)])));
    expect(gather.details).toMatchObject({ function: 'gather bad', item: 0 });
    await expectHealthy(rt);
  });

  it('malformed framed output of a divide or a mapper fails that stage; too deep a recursion fails the divide', async () => {
    const rt = await start();
    const divide = await rejection(
      run(
        rt,
        dc('faulty', 'sum', 'double', (p) => p.byteLength <= 4),
        u32s(1, 2),
      ),
    );
    expect(divide.code).toBe('E_SKELETON_STAGE');
    expect(divide.details).toMatchObject({ function: 'faulty', item: 0, cause: 'E_INVALID_SKELETON' });
    const mapper = await rejection(run(rt, mapReduce({ mapper: 'faulty', reducer: 'sum' }), frame([new TextEncoder().encode('abc')])));
    expect(mapper.code).toBe('E_SKELETON_STAGE');
    expect(mapper.details).toMatchObject({ function: 'faulty', item: 0 });
    // A mapper answering an odd number of parts.
    const odd = await rejection(run(rt, mapReduce({ mapper: 'faulty', reducer: 'sum' }), frame([frame([u32s(1)])])));
    expect(odd.details).toMatchObject({ function: 'faulty', item: 0 });
    expect(odd.message).toMatch(/1 parts/);
    // Echo as divide on nested lists: every level divides again, past maxDepth 2.
    const nested = frame([frame([frame([frame([u32s(1)])])])]);
    const deep = await rejection(
      run(
        rt,
        dc('faulty', 'sum', 'double', () => false, { maxDepth: 2 }),
        nested,
      ),
    );
    expect(deep.details).toMatchObject({ function: 'faulty', item: 0 });
    expect(deep.message).toMatch(/maxDepth 2/);
    await expectHealthy(rt);
  });

  it('malformed framed input to a reduce is a stage error caused by E_INVALID_SKELETON, before any call', async () => {
    const rt = await start();
    const before = calls(rt);
    const err = await rejection(run(rt, reduce('sum', { associative: true }), new Uint8Array([5, 0, 0, 0, 1])));
    expect(err.code).toBe('E_SKELETON_STAGE');
    expect(err.details).toMatchObject({ function: 'sum', item: 0, cause: 'E_INVALID_SKELETON' });
    expect(calls(rt)).toBe(before);
    await expectHealthy(rt);
  });

  it('malformed framed output reaching a reduce mid-stream fails with E_SKELETON_STAGE and the item', async () => {
    // docs/guides/skeletons.md: "malformed framed output ... fails the whole run with E_SKELETON_STAGE
    // (details.function, details.item the stream index ...)".
    const rt = await start();
    const items = [frame([u32s(1), u32s(2)]), frame([u32s(3)]), new Uint8Array([9, 9, 9]), frame([u32s(4)])];
    const err = await rejection(runAll(rt, pipe('faulty', reduce('sum')), items));
    expect(err.code).toBe('E_SKELETON_STAGE');
    expect(err.details).toMatchObject({ item: 2 });
    await expectHealthy(rt);
  });

  it('a stream handler given input that is not a framed list rejects with E_INVALID_SKELETON', async () => {
    const rt = await start();
    const { register } = await import('nuvola/skeletons');
    register(rt, 'doubles', seq('double'), { stream: true });
    const err = await rejection(rt.invoke('doubles', new Uint8Array([1, 2])));
    expect(err.code).toBe('E_INVALID_SKELETON');
    expect(unframe((await rt.invoke('doubles', frame([u32s(4)]))).output).map(readU32s)).toEqual([[8]]);
  });
});

describe('skeleton errors: stopping early', () => {
  it('a break out of a runStream loop returns promptly and leaves nothing running', async () => {
    const rt = await start();
    let pulled = 0;
    let closed = false;
    function* forever(): Generator<Uint8Array> {
      try {
        for (let i = 0; ; i++) {
          pulled++;
          yield u32s(i);
        }
      } finally {
        closed = true;
      }
    }
    const seen: number[] = [];
    const t = performance.now();
    for await (const out of runStream(rt, pipe(farm('double', { replicas: 2 }), 'faulty'), forever())) {
      seen.push(readU32s(out)[0]!);
      if (seen.length === 5) break;
    }
    expect(performance.now() - t).toBeLessThan(10_000);
    expect(seen).toEqual([0, 2, 4, 6, 8]);
    expect(rt.stats().inflight).toBe(0);
    expect(closed).toBe(true);
    expect(pulled).toBeLessThan(100);
    // Nothing runs afterwards.
    const settledCalls = calls(rt);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls(rt)).toBe(settledCalls);
    await expectHealthy(rt);
  });

  it('a break with an async source that waits between items', async () => {
    const rt = await start();
    let closed = false;
    async function* ticking(): AsyncGenerator<Uint8Array> {
      try {
        for (let i = 0; ; i++) {
          await new Promise((r) => setTimeout(r, 2));
          yield u32s(i);
        }
      } finally {
        closed = true;
      }
    }
    let n = 0;
    for await (const out of runStream(rt, farm('double'), ticking())) {
      expect(readU32s(out)).toEqual([2 * n]);
      if (++n === 3) break;
    }
    // The source is told to stop without being waited for: it closes once its pending item is out.
    await vi.waitFor(() => expect(closed).toBe(true));
    expect(rt.stats().inflight).toBe(0);
    await expectHealthy(rt);
  });

  it('a failure or an abort does not wait for a source that stalls', async () => {
    const rt = await start();
    // Two items at once, then nothing for a minute.
    async function* stalling(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([1, 0, 0, 0]);
      yield new Uint8Array([13, 0, 0, 0]); // faulty traps on 13
      await new Promise((r) => setTimeout(r, 60_000).unref());
      yield new Uint8Array([2, 0, 0, 0]);
    }
    let t = performance.now();
    const err = await rejection(runAll(rt, farm('faulty'), stalling()));
    expect(err.code).toBe('E_SKELETON_STAGE');
    expect(performance.now() - t).toBeLessThan(10_000);

    const controller = new AbortController();
    async function* quiet(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([1, 0, 0, 0]);
      await new Promise((r) => setTimeout(r, 60_000).unref());
    }
    t = performance.now();
    const aborted = runAll(rt, farm('faulty'), quiet(), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('enough')), 20);
    await expect(aborted).rejects.toThrow('enough');
    expect(performance.now() - t).toBeLessThan(10_000);
  });

  it('an abort signal stops a run: it rejects with the reason once the calls in flight settle', async () => {
    const rt = await start();
    const controller = new AbortController();
    const reason = new Error('enough');
    const before = calls(rt);
    let outputs = 0;
    const err = await rejection(
      (async () => {
        for await (const out of runStream(
          rt,
          farm('sleep', { replicas: 2 }),
          Array.from({ length: 20 }, () => '30'),
          {
            signal: controller.signal,
          },
        )) {
          expect(text(out)).toBe('slept 30');
          if (++outputs === 1) controller.abort(reason);
        }
      })(),
    );
    expect(err).toBe(reason);
    expect(rt.stats().inflight).toBe(0);
    expect(calls(rt) - before).toBeLessThan(20);
    // Already aborted: nothing runs.
    const b2 = calls(rt);
    expect(await rejection(run(rt, seq('double'), u32s(1), { signal: controller.signal }))).toBe(reason);
    expect(calls(rt)).toBe(b2);
  });
});

describe("skeleton errors: a run's calls are cancelled when it fails", () => {
  /**
   * skel_stall on three workers (first byte 1 loops, 2 sleeps a minute, 3 traps after 30 ms),
   * registered with a minute's timeout: a call still there when its run fails would hold the
   * run for a minute unless it is cancelled. `outcomes` records how every invoke of it ended,
   * by its mode.
   */
  async function stalling(): Promise<{ rt: Runtime; outcomes: Map<number, string[]> }> {
    const { rt } = await track({ workers: 3 });
    await rt.register('stall', guestBytes('skel_stall'), { timeoutMs: 60_000 });
    await rt.register('double', guestBytes('skel_double'));
    await rt.register('faulty', guestBytes('skel_faulty'));
    const outcomes = new Map<number, string[]>();
    const invoke = rt.invoke.bind(rt);
    vi.spyOn(rt, 'invoke').mockImplementation((name, input, options) => {
      const call = invoke(name, input, options);
      if (name === 'stall') {
        const mode = (input as Uint8Array)[0]!;
        const record = (outcome: string): void => void outcomes.set(mode, [...(outcomes.get(mode) ?? []), outcome]);
        call.then(
          () => record('ok'),
          (err: NuvolaError) => record(err.code),
        );
      }
      return call;
    });
    return { rt, outcomes };
  }

  const LOOP = 1;
  const SLEEP = 2;
  const TRAP = 3;

  for (const [name, runIt] of [
    ['a farm', (rt: Runtime) => runAll(rt, farm('stall', { replicas: 3 }), [byte(LOOP), byte(SLEEP), byte(TRAP)])],
    [
      'a map (one item)',
      (rt: Runtime) =>
        run(rt, map('stall', { partition: partitions.chunks(3), gather: gathers.concat() }), new Uint8Array([LOOP, SLEEP, TRAP])),
    ],
    [
      'a farm of a fused seq (invokeChain)',
      (rt: Runtime) => runAll(rt, farm(seq('stall', 'faulty'), { replicas: 3 }), [byte(LOOP), byte(SLEEP), byte(TRAP)]),
    ],
  ] as const) {
    it(`${name}: the first failure cancels the looping and the sleeping call, and the runtime serves on`, async () => {
      const { rt, outcomes } = await stalling();
      const err = await rejection(runIt(rt));
      expect(err.code).toBe('E_SKELETON_STAGE');
      expect(err.details).toMatchObject({ function: 'stall', cause: 'E_GUEST_TRAP' });
      // Settled by the time the run rejects: cancelled, not run out to their minute.
      expect(outcomes.get(TRAP)).toEqual(['E_GUEST_TRAP']);
      expect(outcomes.get(LOOP)).toEqual(['E_CANCELLED']);
      expect(outcomes.get(SLEEP)).toEqual(['E_CANCELLED']);
      const stats = rt.stats();
      expect(stats.inflight).toBe(0);
      // The loop was interrupted at a check, not by stopping its worker.
      expect(stats.timeoutTerminations).toBe(0);
      expect(stats.workerRestarts).toBe(0);
      await expectHealthy(rt);
    });
  }

  it("the run's own signal cancels its calls in flight; the run rejects with the reason", async () => {
    const { rt, outcomes } = await stalling();
    const controller = new AbortController();
    const reason = new Error('enough');
    const running = rejection(runAll(rt, farm('stall', { replicas: 2 }), [byte(LOOP), byte(SLEEP)], { signal: controller.signal }));
    await vi.waitFor(() => expect(rt.stats().inflight).toBe(2));
    controller.abort(reason);
    expect(await running).toBe(reason);
    expect(outcomes.get(LOOP)).toEqual(['E_CANCELLED']);
    expect(outcomes.get(SLEEP)).toEqual(['E_CANCELLED']);
    expect(rt.stats().inflight).toBe(0);
    expect(rt.stats().timeoutTerminations).toBe(0);
    await expectHealthy(rt);
  });
});

describe('skeleton errors: the runtime closes under a run', () => {
  it('the run rejects with E_SKELETON_STAGE caused by E_CLOSED and settles', async () => {
    const rt = await start();
    const running = runAll(
      rt,
      pipe(farm('sleep', { replicas: 2 }), 'faulty'),
      Array.from({ length: 10 }, () => '40'),
    );
    const outcome = rejection(running);
    await new Promise((r) => setTimeout(r, 60));
    await rt.close();
    const err = await outcome;
    expect(err.code).toBe('E_SKELETON_STAGE');
    expect(err.details['cause']).toBe('E_CLOSED');
  });
});

describe('skeleton errors: the first failure stops everything', () => {
  it('in a sequential run, no call starts after the one that failed', async () => {
    const rt = await start();
    const before = calls(rt);
    const items = [1, 2, 13, 4, 5].map((v) => new Uint8Array([v, 0, 0, 0]));
    const err = await rejection(runAll(rt, farm('faulty'), items, { sequential: true }));
    expect(err.details).toMatchObject({ function: 'faulty', item: 2 });
    expect(calls(rt) - before).toBe(3);
  });

  it('a registered skeleton used as a stage fails as part of this run: the item is the outer stream index', async () => {
    const rt = await start();
    register(rt, 'inner', farm('faulty'));
    const items = [1, 2, 3, 13, 5].map((v) => new Uint8Array([v, 0, 0, 0]));
    const err = await rejection(runAll(rt, farm(seq('inner')), items));
    expect(err.code).toBe('E_SKELETON_STAGE');
    expect(err.details).toMatchObject({ function: 'faulty', item: 3 });
  });

  it('a handler call ends with E_CLOSED when the runtime closes, even if the handler ignores its signal', async () => {
    const rt = await start();
    rt.registerHandler('stubborn', () => new Promise<Uint8Array>((resolve) => setTimeout(() => resolve(new Uint8Array(0)), 5000).unref()));
    const call = rejection(rt.invoke('stubborn'));
    await new Promise((r) => setTimeout(r, 20));
    const t = performance.now();
    await rt.close();
    const err = await call;
    expect(err.code).toBe('E_CLOSED');
    expect(performance.now() - t).toBeLessThan(2000);
  });

  it("the guest SDK's frames.split refuses a length that would wrap and bytes after the last part", async () => {
    const rt = await start();
    const wrapping = new Uint8Array(12);
    new DataView(wrapping.buffer).setUint32(0, 1, true);
    new DataView(wrapping.buffer).setUint32(4, 0x7ffffffd, true);
    const trailing = new Uint8Array([...frame([u32s(5)]), 9]);
    for (const bad of [wrapping, trailing]) {
      const err = await rejection(rt.invoke('sum', bad));
      expect(err.code).toBe('E_GUEST_ABORT');
      expect(err.message).toContain('frames.split');
    }
    expect(readU32s((await rt.invoke('sum', frame([u32s(5), u32s(6)]))).output)).toEqual([11]);
  });
});

describe('skeleton errors: constructors', () => {
  it('reject malformed skeletons with E_INVALID_SKELETON', () => {
    const cases: [string, () => unknown][] = [
      ['farm replicas 0', () => farm('double', { replicas: 0 })],
      ['farm replicas 1.5', () => farm('double', { replicas: 1.5 })],
      ['farm replicas 5000', () => farm('double', { replicas: 5000 })],
      ['farm of a number', () => farm(42 as unknown as string)],
      ['farm of an object that is no skeleton', () => farm({ kind: 'loop' } as unknown as Skeleton)],
      ['empty pipe', () => pipe()],
      ['seq of no names', () => (seq as (...a: unknown[]) => unknown)()],
      ['seq of an empty name', () => seq('')],
      ['seq of a number', () => seq(7 as unknown as string)],
      ['reduce of no name', () => reduce('')],
      ['mapReduce reducers 0', () => mapReduce({ mapper: 'a', reducer: 'b', reducers: 0 })],
      ['mapReduce without reducer', () => mapReduce({ mapper: 'a' } as unknown as { mapper: string; reducer: string })],
      ['dc isBase not a function', () => dc('a', 'b', 'c', 'yes' as unknown as () => boolean)],
      ['dc maxDepth 0', () => dc('a', 'b', 'c', () => true, { maxDepth: 0 })],
      ['iterate maxIterations 0', () => iterate('a', { maxIterations: 0 })],
      ['iterate without maxIterations', () => iterate('a', {} as unknown as { maxIterations: number })],
      ['iterate until not a function', () => iterate('a', { maxIterations: 2, until: 3 as unknown as () => boolean })],
      ['map with a bad partition', () => map('a', { partition: {} as unknown as ReturnType<typeof partitions.framed> })],
      ['map with a bad gather', () => map('a', { gather: { kind: 'x' } as unknown as ReturnType<typeof gathers.framed> })],
      ['chunks count 0', () => partitions.chunks(0)],
      ['chunks align 0', () => partitions.chunks(2, 0)],
      ['text count -1', () => partitions.text(-1)],
      ['custom partition without split', () => partitions.custom('p', undefined as unknown as () => Uint8Array[])],
      ['custom gather without join', () => gathers.custom('g', undefined as unknown as () => Uint8Array)],
    ];
    for (const [what, make] of cases) {
      const err = thrown(make);
      expect({ what, code: err.code, name: err.name }).toEqual({ what, code: 'E_INVALID_SKELETON', name: 'SkeletonError' });
    }
  });

  it('accepts function names as stages and the documented defaults', () => {
    expect(pipe('a', seq('b'))).toEqual({ kind: 'pipe', stages: [seq('a'), seq('b')] });
    expect(farm('a')).toEqual({ kind: 'farm', worker: seq('a'), replicas: 'auto', ordered: true });
    expect(reduce('r')).toEqual({ kind: 'reduce', fn: 'r', associative: false, commutative: false });
    expect(seq('a', 'b', { stateful: true })).toEqual({ kind: 'seq', fns: ['a', 'b'], stateful: true });
    expect(dc('a', 'b', 'c', () => true).maxDepth).toBe(32);
  });
});

describe('framed lists', () => {
  it('frame and unframe round-trip, and unframe rejects malformed lists with E_INVALID_SKELETON', () => {
    const parts = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(300).fill(9)];
    const framed = frame(parts);
    expect(framed.byteLength).toBe(4 + 3 * 4 + 303);
    expect(unframe(framed).map((p) => Array.from(p))).toEqual(parts.map((p) => Array.from(p)));
    expect(unframe(frame([]))).toEqual([]);
    for (const bad of [
      new Uint8Array([1, 0]), // shorter than the count
      new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0]), // a count larger than the bytes can hold
      new Uint8Array([1, 0, 0, 0, 5, 0, 0, 0, 1]), // cut short in a part
      new Uint8Array([1, 0, 0, 0, 1, 0, 0, 0, 1, 2]), // bytes after the last part
      new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 1, 0]), // cut short in a length
    ]) {
      const err = thrown(() => unframe(bad));
      expect(err.code).toBe('E_INVALID_SKELETON');
      expect(err.details).toEqual({ bytes: bad.byteLength });
    }
  });
});
