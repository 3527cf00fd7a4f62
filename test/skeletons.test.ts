import { describe, expect, it } from 'vitest';
import { HandlerError, type NuvolaError, type Runtime } from 'nuvola';
import { until } from 'nuvola/testing';
import {
  farm,
  frame,
  gathers,
  iterate,
  map,
  mapReduce,
  normalize,
  partitions,
  pipe,
  reduce,
  register,
  run,
  runAll,
  runStream,
  seq,
  unframe,
  type Skeleton,
} from 'nuvola/skeletons';
import {
  FILTERS,
  countWords,
  decodeCounts,
  imagePipeline,
  makeImages,
  makeText,
  mandelReference,
  mandelRows,
  mandelSkeleton,
  matmulProblem,
  matmulReference,
  matmulSkeleton,
  sequentially,
  sha256,
  wordCountSkeleton,
} from '../dist/examples/06-skeletons/apps.js';
import { closedAfterEach, guestBytes, text } from './helpers.js';
import { readU32s, u32s, withAppGuests } from './skeleton-helpers.js';

const track = closedAfterEach();

async function start(): Promise<Runtime> {
  return (await track({ workers: 2 })).rt;
}

/** A runtime with the application guests (built once into test/.build/skeletons). */
async function withApps(): Promise<Runtime> {
  return withAppGuests(await start());
}

/** A runtime with the small test guests: double, sum, sub, echo (skel_faulty), caller. */
async function withTestGuests(rt?: Runtime): Promise<Runtime> {
  const r = rt ?? (await start());
  await r.register('double', guestBytes('skel_double'));
  await r.register('sum', guestBytes('skel_sum'));
  await r.register('sub', guestBytes('skel_sub'));
  await r.register('faulty', guestBytes('skel_faulty'));
  await r.register('caller', guestBytes('skel_caller'));
  return r;
}

const readI32 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getInt32(0, true);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const calls = (rt: Runtime): number => rt.stats().completed + rt.stats().failed;

/** One step of sgd_step in JavaScript, the same f64 operations in the same order. */
function sgdStep(state: Uint8Array): Uint8Array {
  const s = new Float64Array(Uint8Array.from(state).buffer);
  let w = s[0]!;
  let b = s[1]!;
  let gw = 0;
  let gb = 0;
  let loss = 0;
  for (let i = 0; i < 64; i++) {
    const x = i / 64.0;
    const y = 3.0 * x + 1.0 + (((i * 37) % 11) - 5) * 0.001;
    const e = w * x + b - y;
    gw += e * x;
    gb += e;
    loss += e * e;
  }
  w -= (0.5 * gw) / 32.0;
  b -= (0.5 * gb) / 32.0;
  return new Uint8Array(new Float64Array([w, b, loss / 64.0]).buffer);
}
const lossOf = (state: Uint8Array): number => new DataView(state.buffer, state.byteOffset, state.byteLength).getFloat64(16, true);

describe('skeletons: the four applications', () => {
  it('Mandelbrot farm: every row equals the JS reference bit for bit, and the sequential run', async () => {
    const rt = await withApps();
    const p = { width: 200, height: 40, maxIter: 200 };
    const rows = mandelRows(p);
    const reference = mandelReference(p);
    // The picture is not trivial: rows differ.
    expect(new Set(reference.map((r) => sha256(r))).size).toBeGreaterThan(10);
    const outputs = await runAll(rt, mandelSkeleton(), rows);
    expect(outputs).toHaveLength(p.height);
    expect(outputs.map((o) => sha256(o))).toEqual(reference.map((r) => sha256(r)));
    const sequential = await sequentially(rt, ['mandel_row'], rows);
    expect(sha256(outputs)).toBe(sha256(sequential));
    // A fixed replica count and a one-call-at-a-time run give the same picture.
    expect(sha256(await runAll(rt, mandelSkeleton(3), rows))).toBe(sha256(reference));
    expect(sha256(await runAll(rt, mandelSkeleton(), rows, { sequential: true }))).toBe(sha256(reference));
  });

  it('image pipeline: the pipe and its normal form farm(seq(all five)) match the sequential run', async () => {
    const rt = await withApps();
    const images = makeImages(4, 64, 64);
    const sequential = await sequentially(rt, FILTERS, images);
    // The filters change the images.
    expect(sequential.map((o) => sha256(o))).not.toEqual(images.map((i) => sha256(i)));
    const original = imagePipeline();
    const outputs = await runAll(rt, original, images);
    expect(outputs.map((o) => sha256(o))).toEqual(sequential.map((o) => sha256(o)));

    const steps: string[] = [];
    const normal = normalize(original, { rt }, steps);
    expect(normal.kind).toBe('farm');
    const worker = (normal as Extract<Skeleton, { kind: 'farm' }>).worker;
    expect(worker.kind).toBe('seq');
    expect((worker as Extract<Skeleton, { kind: 'seq' }>).fns).toEqual([...FILTERS]);
    expect((normal as Extract<Skeleton, { kind: 'farm' }>).ordered).toBe(true);
    expect(steps).toEqual(expect.arrayContaining(['fusion', 'farmIntro']));
    const normalOutputs = await runAll(rt, normal, images);
    expect(normalOutputs.map((o) => sha256(o))).toEqual(sequential.map((o) => sha256(o)));
  });

  it('word count: mapReduce counts equal countWords exactly, keys in byte order, total = tokens', async () => {
    const rt = await withApps();
    const input = makeText(3000);
    const expected = countWords(input);
    const tokens = input.split(/[^A-Za-z0-9]+/).filter((w) => w.length > 0).length;
    expect(tokens).toBe(3000);
    const check = (output: Uint8Array): void => {
      const counts = decodeCounts(output);
      expect(counts).toEqual(expected);
      expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(tokens);
      const keys = unframe(output).filter((_, i) => i % 2 === 0);
      const sorted = [...keys].sort((a, b) => Buffer.compare(a, b));
      expect(keys.map(hex)).toEqual(sorted.map(hex));
    };
    check(await run(rt, wordCountSkeleton(), input));
    check(await run(rt, wordCountSkeleton('workers'), input));
    check(await run(rt, mapReduce({ mapper: 'wc_map', reducer: 'wc_reduce', partition: partitions.text(5), reducers: 1 }), input));
    check(await run(rt, mapReduce({ mapper: 'wc_map', reducer: 'wc_reduce', partition: partitions.text(1), reducers: 3 }), input));
    // No words: an empty list.
    expect(unframe(await run(rt, wordCountSkeleton(), ''))).toEqual([]);
    expect(decodeCounts(await run(rt, wordCountSkeleton(3), ' ,. \n'))).toEqual(new Map());
  });

  it('matmul divide & conquer: n=64 with 16-wide base cases equals the JS product; 82 calls', async () => {
    const rt = await withApps();
    const problem = matmulProblem(64);
    const before = calls(rt);
    const out = await run(rt, matmulSkeleton(16), problem);
    // 1 divide at 64, 8 at 32, 64 base cases at 16, 8 combines at 32, 1 at 64.
    expect(calls(rt) - before).toBe(82);
    expect(hex(out)).toBe(hex(matmulReference(problem)));
  });

  it('matmul: an input that is already a base case is one call to the base function', async () => {
    const rt = await withApps();
    const problem = matmulProblem(32, 9);
    const before = calls(rt);
    const out = await run(rt, matmulSkeleton(32), problem);
    expect(calls(rt) - before).toBe(1);
    expect(hex(out)).toBe(hex(matmulReference(problem)));
    // One level of division gives the same product.
    expect(hex(await run(rt, matmulSkeleton(16), problem))).toBe(hex(matmulReference(problem)));
  });
});

describe('skeletons: iterate', () => {
  const zero: Uint8Array = new Uint8Array(24);

  it('runs sgd_step maxIterations times; the f64 state equals the JS arithmetic byte for byte', async () => {
    const rt = await withApps();
    let expected = zero;
    for (let i = 0; i < 40; i++) expected = sgdStep(expected);
    const before = calls(rt);
    const out = await run(rt, iterate('sgd_step', { maxIterations: 40 }), zero);
    expect(calls(rt) - before).toBe(40);
    expect(hex(out)).toBe(hex(expected));
    // It converges towards w = 3, b = 1.
    const [w, b] = new Float64Array(Uint8Array.from(out).buffer);
    expect(Math.abs(w! - 3)).toBeLessThan(1);
    expect(Math.abs(b! - 1)).toBeLessThan(0.5);
  });

  it('stops as soon as until holds, and tells until the iteration number', async () => {
    const rt = await withApps();
    const threshold = 0.05;
    let expected = zero;
    let steps = 0;
    do {
      expected = sgdStep(expected);
      steps++;
    } while (lossOf(expected) >= threshold);
    expect(steps).toBeGreaterThan(1);
    expect(steps).toBeLessThan(100);
    const seen: number[] = [];
    const before = calls(rt);
    const out = await run(
      rt,
      iterate('sgd_step', {
        maxIterations: 1000,
        until: (output, i) => {
          seen.push(i);
          return lossOf(output) < threshold;
        },
      }),
      zero,
    );
    expect(hex(out)).toBe(hex(expected));
    expect(calls(rt) - before).toBe(steps);
    expect(seen).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
  });

  it('maxIterations bounds a loop whose until never holds; an iterate inside a farm runs per item', async () => {
    const rt = await withApps();
    const before = calls(rt);
    const out = await run(rt, iterate('sgd_step', { maxIterations: 3, until: () => false }), zero);
    expect(calls(rt) - before).toBe(3);
    expect(hex(out)).toBe(hex(sgdStep(sgdStep(sgdStep(zero)))));
    const starts = [zero, sgdStep(zero), new Uint8Array(new Float64Array([5, -2, 0]).buffer)];
    const outs = await runAll(rt, farm(iterate('sgd_step', { maxIterations: 5 })), starts);
    expect(outs.map(hex)).toEqual(
      starts.map((s) => {
        let x = s;
        for (let i = 0; i < 5; i++) x = sgdStep(x);
        return hex(x);
      }),
    );
  });
});

describe('skeletons: reduce and map', () => {
  const values = Array.from({ length: 10 }, (_, i) => (i * 7919 + 13) >>> 0);
  const framedValues = frame(values.map((v) => u32s(v)));

  it('an associative reduce runs in parallel pieces (3 calls on 2 workers) and gives the sum', async () => {
    const rt = await withTestGuests();
    const before = calls(rt);
    const out = await run(rt, reduce('sum', { associative: true }), framedValues);
    expect(calls(rt) - before).toBe(3);
    expect(readU32s(out)).toEqual([values.reduce((a, b) => (a + b) >>> 0, 0)]);
    // A single value, and none: one call each.
    expect(readU32s(await run(rt, reduce('sum', { associative: true }), frame([u32s(42)])))).toEqual([42]);
    expect(readU32s(await run(rt, reduce('sum', { associative: true }), frame([])))).toEqual([0]);
  });

  it('a reduce not declared associative is one call over all values, in order', async () => {
    const rt = await withTestGuests();
    const before = calls(rt);
    const out = await run(rt, reduce('sub'), framedValues);
    expect(calls(rt) - before).toBe(1);
    expect(readI32(out)).toBe(values.slice(1).reduce((a, b) => (a - b) | 0, values[0]!));
    // Declaring it associative would be wrong: the pieces' results are subtracted again.
    const wrong = await run(rt, reduce('sub', { associative: true }), framedValues);
    expect(readI32(wrong)).not.toBe(readI32(out));
  });

  it('map with chunks and concat doubles every u32, one call per chunk', async () => {
    const rt = await withTestGuests();
    const xs = Array.from({ length: 25 }, (_, i) => i * 1000 + 1);
    const before = calls(rt);
    const out = await run(rt, map('double', { partition: partitions.chunks(3, 4), gather: gathers.concat() }), u32s(...xs));
    expect(calls(rt) - before).toBe(3);
    expect(readU32s(out)).toEqual(xs.map((x) => x * 2));
    // One chunk per worker by default.
    const b2 = calls(rt);
    const out2 = await run(rt, map('double', { partition: partitions.chunks('workers', 4), gather: gathers.concat() }), u32s(...xs));
    expect(calls(rt) - b2).toBe(2);
    expect(readU32s(out2)).toEqual(xs.map((x) => x * 2));
  });

  it('map with the framed partition and gather: a framed list in, the framed list of outputs out', async () => {
    const rt = await withTestGuests();
    const parts = [u32s(1, 2, 3), u32s(), u32s(0x80000001), u32s(7, 8)];
    const out = await run(rt, map('double'), frame(parts));
    expect(unframe(out).map(readU32s)).toEqual([[2, 4, 6], [], [2], [14, 16]]);
    // Custom partition and gather: halves of the item, joined in reverse order.
    const custom = map('double', {
      partition: partitions.custom('halves', (item) => [item.subarray(0, 8), item.subarray(8)]),
      gather: gathers.custom('reversed', (outs) => Buffer.concat([...outs].reverse())),
    });
    expect(readU32s(await run(rt, custom, u32s(1, 2, 3, 4)))).toEqual([6, 8, 2, 4]);
  });

  it('a gather reduce that is commutative but not associative is applied to the list in order, as sequentially', async () => {
    const rt = await withTestGuests();
    const node = map('double', { gather: gathers.reduce(reduce('sub', { commutative: true })) });
    const parallel = readU32s(await run(rt, node, framedValues));
    const sequential = readU32s(await run(rt, node, framedValues, { sequential: true }));
    const [first, ...rest] = values.map((v) => (2 * v) >>> 0);
    expect(parallel).toEqual([rest.reduce((a, b) => (a - b) >>> 0, first!)]);
    expect(parallel).toEqual(sequential);
  });

  it('a map whose gather is a reduce (map–reduce fused) sums the doubled values', async () => {
    const rt = await withTestGuests();
    const expected = values.reduce((a, b) => (a + 2 * b) >>> 0, 0);
    for (const commutative of [false, true]) {
      const node = map('double', { gather: gathers.reduce(reduce('sum', { associative: true, commutative })) });
      expect(readU32s(await run(rt, node, framedValues))).toEqual([expected]);
    }
  });
});

describe('skeletons: partitions', () => {
  const LETTER = /[A-Za-z0-9\x80-\xff]/;

  it('text(n) cuts into at most n pieces that join back to the item, never inside a word', () => {
    const encoder = new TextEncoder();
    const samples = [makeText(500, 1), makeText(37, 2), 'one', '', '   ', 'x'.repeat(50) + ' y', 'a b c d e f g h i j'];
    for (const sample of samples) {
      const item = encoder.encode(sample);
      for (const n of [1, 2, 3, 7, 64]) {
        const parts = partitions.text(n).split(item, 2);
        expect(parts.length).toBeGreaterThanOrEqual(1);
        expect(parts.length).toBeLessThanOrEqual(n);
        expect(hex(Buffer.concat(parts))).toBe(hex(item));
        let at = 0;
        for (const part of parts.slice(0, -1)) {
          at += part.byteLength;
          const left = String.fromCharCode(item[at - 1]!);
          const right = String.fromCharCode(item[at]!);
          expect(LETTER.test(left) && LETTER.test(right)).toBe(false);
        }
      }
      expect(partitions.text('workers').split(item, 3).length).toBeLessThanOrEqual(3);
    }
  });

  it('chunks(n, align) cuts into at most n whole records that join back to the item', () => {
    for (const records of [0, 1, 3, 10, 101]) {
      const item = new Uint8Array(records * 12).map((_, i) => i & 255);
      for (const n of [1, 2, 4, 16]) {
        const parts = partitions.chunks(n, 12).split(item, 2);
        expect(parts.length).toBeLessThanOrEqual(Math.max(1, n));
        expect(parts.every((p) => p.byteLength % 12 === 0)).toBe(true);
        if (records > 0) expect(parts.every((p) => p.byteLength > 0)).toBe(true);
        expect(parts.length).toBe(Math.max(1, Math.min(n, records)));
        expect(hex(Buffer.concat(parts))).toBe(hex(item));
      }
    }
  });
});

describe('skeletons: streams', () => {
  it('runStream yields the outputs of an ordered farm in input order, as they are ready', async () => {
    const rt = await withApps();
    // Rows near the middle cost far more than rows at the edge: completion order differs from input order.
    const p = { width: 120, height: 30, maxIter: 400 };
    const reference = mandelReference(p).map((r) => sha256(r));
    const seen: string[] = [];
    for await (const out of runStream(rt, mandelSkeleton(2), mandelRows(p))) seen.push(sha256(out));
    expect(seen).toEqual(reference);
  });

  it('an unordered farm yields every output (as a multiset)', async () => {
    const rt = await withApps();
    const p = { width: 120, height: 30, maxIter: 400 };
    const reference = mandelReference(p).map((r) => sha256(r));
    const seen: string[] = [];
    const node = farm('mandel_row', { replicas: 2, ordered: false });
    for await (const out of runStream(rt, node, mandelRows(p))) seen.push(sha256(out));
    expect(seen).toHaveLength(reference.length);
    expect([...seen].sort()).toEqual([...reference].sort());
  });

  it('an ordered stage after an unordered farm does not wait for stream order (no deadlock)', async () => {
    const rt = await withTestGuests();
    await rt.register('sleep', guestBytes('core_sleep'));
    // Item 0 sleeps while the other replica pushes 40 quick items downstream, out of stream
    // order: far more than the ordered stage's window and the channels hold.
    const inputs = ['200', ...Array.from({ length: 40 }, () => '0')];
    const node = pipe(farm('sleep', { replicas: 2, ordered: false }), farm('faulty', { replicas: 2 }), 'faulty');
    const outs = await runAll(rt, node, inputs);
    expect(outs.map(text).sort()).toEqual(['slept 200', ...Array.from({ length: 40 }, () => 'slept 0')].sort());
    // Unordered at the top: the slow item is not first.
    expect(text(outs[0]!)).toBe('slept 0');
  }, 15_000);

  it('a pipeline of farms and seqs over an async source keeps item order', async () => {
    const rt = await withTestGuests();
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 40; i++) {
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
        yield u32s(i, i + 1);
      }
    }
    const node = pipe(farm('double', { replicas: 3 }), 'faulty', farm(seq('double', 'double')));
    const outs = await runAll(rt, node, source());
    expect(outs.map(readU32s)).toEqual(Array.from({ length: 40 }, (_, i) => [i * 8, (i + 1) * 8]));
  });
});

describe('skeletons: registered as functions', () => {
  it('register(rt, name, skeleton): rt.invoke gives the same output as run', async () => {
    const rt = await withApps();
    register(rt, 'mandel', mandelSkeleton());
    const row = mandelRows({ width: 100, height: 20, maxIter: 100 })[7]!;
    const result = await rt.invoke('mandel', row);
    expect(result.returnCode).toBe(0);
    expect(result.worker).toBe(-1);
    expect(sha256(result.output)).toBe(sha256(await run(rt, mandelSkeleton(), row)));
    expect(sha256(result.output)).toBe(sha256(mandelReference({ width: 100, height: 20, maxIter: 100 })[7]!));
  });

  it('with stream: true, a framed list in gives the framed list of outputs', async () => {
    const rt = await withApps();
    register(rt, 'images', imagePipeline(), { stream: true });
    const images = makeImages(3, 32, 16);
    const sequential = await sequentially(rt, FILTERS, images);
    const result = await rt.invoke('images', frame(images));
    expect(result.returnCode).toBe(0);
    expect(unframe(result.output).map((o) => sha256(o))).toEqual(sequential.map((o) => sha256(o)));
    // An empty list gives an empty list.
    expect(unframe((await rt.invoke('images', frame([]))).output)).toEqual([]);
  });

  it("a guest's chain.call of a registered skeleton gets its output", async () => {
    const rt = await withTestGuests();
    register(rt, 'quad', pipe('double', 'double'));
    register(rt, 'quadAll', farm('quad'), { stream: true });
    const r = await rt.invoke('caller', frame([utf8('quad'), u32s(1, 2, 3)]));
    expect(r.returnCode).toBe(0);
    expect(readU32s(r.output)).toEqual([4, 8, 12]);
    // A registered skeleton that calls another registered skeleton.
    const r2 = await rt.invoke('caller', frame([utf8('quadAll'), frame([u32s(5), u32s(6, 7)])]));
    expect(r2.returnCode).toBe(0);
    expect(unframe(r2.output).map(readU32s)).toEqual([[20], [24, 28]]);
    // invokeChain through a handler and a guest.
    const chained = await rt.invokeChain(['quad', 'double'], u32s(3));
    expect(readU32s(chained.output)).toEqual([24]);
    expect(chained.stages.map((s) => s.function)).toEqual(['quad', 'double']);
  });

  it("a failing registered skeleton reaches a chain.call caller as FAILED with the stage's code", async () => {
    const rt = await withTestGuests();
    register(rt, 'doubleEcho', pipe('double', 'faulty'));
    const r = await rt.invoke('caller', frame([utf8('doubleEcho'), new Uint8Array([13, 0, 0, 0])]));
    // double(13) = 26 passes; 13 itself traps in faulty.
    expect(r.returnCode).toBe(0);
    expect(readU32s(r.output)).toEqual([26]);
    register(rt, 'echoFirst', pipe('faulty', 'double'));
    const failed = await rt.invoke('caller', frame([utf8('echoFirst'), new Uint8Array([13, 0, 0, 0])]));
    expect(failed.returnCode).toBe(-1);
    expect(text(failed.output)).toMatch(/^FAILED E_SKELETON_STAGE: .*'faulty'/);
    const seven = await rt.invoke('caller', frame([utf8('echoFirst'), new Uint8Array([7, 0, 0, 0])]));
    expect(seven.returnCode).toBe(-1);
    expect(text(seven.output)).toMatch(/^FAILED E_SKELETON_STAGE: .*returned 7/);
    const ok = await rt.invoke('caller', frame([utf8('echoFirst'), u32s(3)]));
    expect(ok.returnCode).toBe(0);
    expect(readU32s(ok.output)).toEqual([6]);
  });

  it('describe and functions() include handlers; register checks names and functions', async () => {
    const rt = await withTestGuests();
    register(rt, 'quad', pipe('double', 'double'), { timeoutMs: 1234 });
    expect(rt.functions()).toEqual(expect.arrayContaining(['double', 'sum', 'quad']));
    expect(rt.describe('quad')).toEqual({ name: 'quad', kind: 'handler', timeoutMs: 1234, handler: expect.any(Function) as unknown });
    expect(rt.describe('double')).toMatchObject({ name: 'double', kind: 'wasm', reuse: 'reset' });
    expect(() => register(rt, 'quad', seq('double'))).toThrow(expect.objectContaining({ code: 'E_ALREADY_REGISTERED' }));
    expect(() => register(rt, 'nope', pipe('double', 'missing'))).toThrow(
      expect.objectContaining({ code: 'E_UNKNOWN_FUNCTION', details: { function: 'missing' } }),
    );
    expect(rt.functions()).not.toContain('nope');
    await expect(rt.register('quad', guestBytes('skel_double'))).rejects.toMatchObject({ code: 'E_ALREADY_REGISTERED' });
    rt.unregister('quad');
    expect(rt.functions()).not.toContain('quad');
    await expect(rt.invoke('quad', u32s(1))).rejects.toMatchObject({ code: 'E_UNKNOWN_FUNCTION' });
  });

  it('invokeGroup of a handler is rejected with E_INVALID_OPTION', async () => {
    const rt = await withTestGuests();
    register(rt, 'quad', pipe('double', 'double'));
    const before = calls(rt);
    const err = (await rt.invokeGroup('quad', 2, u32s(1)).catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_INVALID_OPTION');
    expect(err.details).toMatchObject({ function: 'quad' });
    expect(calls(rt)).toBe(before);
  });

  it('a handler that throws gives E_HANDLER_FAILED; one that resolves with something else too', async () => {
    const rt = await start();
    rt.registerHandler('boom', () => Promise.reject(new Error('kaboom')));
    rt.registerHandler('weird', () => Promise.resolve('text' as unknown as Uint8Array));
    rt.registerHandler('coded', () => Promise.resolve({ output: utf8('x'), returnCode: 3 }));
    const err = (await rt.invoke('boom').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_HANDLER_FAILED');
    expect(err.message).toMatch(/kaboom/);
    expect(err.details).toMatchObject({ function: 'boom' });
    await expect(rt.invoke('weird')).rejects.toMatchObject({ code: 'E_HANDLER_FAILED' });
    const coded = await rt.invoke('coded');
    expect(coded.returnCode).toBe(3);
    expect(text(coded.output)).toBe('x');
  });

  it('handler edge cases: details that cannot cross a thread, a return code beyond i32, bad options, a closed runtime', async () => {
    const rt = await withTestGuests();
    // Details holding a function: a guest's chain.call still gets FAILED with the code (the process used to crash).
    rt.registerHandler('odd', () => Promise.reject(new HandlerError('E_HANDLER_FAILED', 'odd details', { retry: () => 0 })));
    const called = await rt.invoke('caller', frame([utf8('odd'), utf8('x')]));
    expect(called.returnCode).toBe(-1);
    expect(text(called.output)).toContain('E_HANDLER_FAILED');
    rt.registerHandler('big', () => Promise.resolve({ output: new Uint8Array(0), returnCode: 2 ** 32 + 5 }));
    await expect(rt.invoke('big')).rejects.toMatchObject({ code: 'E_HANDLER_FAILED' });
    expect(() => rt.registerHandler('opts', () => Promise.resolve(new Uint8Array(0)), { timeout: 5 } as never)).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION' }) as Error,
    );
    expect(() => rt.registerHandler('opts2', () => Promise.resolve(new Uint8Array(0)), null as never)).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION' }) as Error,
    );
    await rt.close();
    await expect(rt.invoke('big')).rejects.toMatchObject({ code: 'E_CLOSED' });
  });

  it('a registered skeleton that runs past its timeoutMs gives E_TIMEOUT and stops starting calls', async () => {
    const rt = await withTestGuests();
    await rt.register('sleep', guestBytes('core_sleep'));
    register(rt, 'slow', seq('sleep'), { timeoutMs: 60 });
    register(rt, 'slowAll', seq('sleep'), { stream: true, timeoutMs: 60 });
    const err = (await rt.invoke('slow', '400').catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_TIMEOUT');
    expect(err.details).toMatchObject({ function: 'slow', timeoutMs: 60 });
    // A stream of twenty 50 ms calls, one at a time, cut at 60 ms: once the call in flight
    // settles, no new one starts.
    await until(() => rt.stats().inflight === 0);
    const before = calls(rt);
    const streamErr = (await rt
      .invoke('slowAll', frame(Array.from({ length: 20 }, () => utf8('50'))))
      .catch((e: unknown) => e)) as NuvolaError;
    expect(streamErr.code).toBe('E_TIMEOUT');
    await until(() => rt.stats().inflight === 0);
    const settled = calls(rt);
    await new Promise((r) => setTimeout(r, 300));
    expect(calls(rt)).toBe(settled);
    expect(settled - before).toBeLessThan(20);
    // A per-call timeout overrides the handler's.
    const fast = await rt.invoke('slow', '10', { timeoutMs: 5000 });
    expect(text(fast.output)).toBe('slept 10');
  });
});
