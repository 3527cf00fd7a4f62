import { describe, expect, it } from 'vitest';
import type { NuvolaError, Runtime } from 'nuvola';
import {
  RULES,
  explain,
  farm,
  frame,
  gathers,
  iterate,
  map,
  normalize,
  partitions,
  pipe,
  reduce,
  register,
  rewrite,
  run,
  runAll,
  seq,
  statefulFunctions,
  unframe,
  type RewriteContext,
  type RuleName,
  type Skeleton,
} from 'nuvola/skeletons';
import { closedAfterEach, guestBytes, runScript } from './helpers.js';
import { readU32s, u32s } from './skeleton-helpers.js';

const track = closedAfterEach();

/**
 * A runtime with: double (each u32 × 2), sum (framed u32s → u32), sub (first − rest, not
 * associative), echo (skel_faulty: outputs its input), and counter, registered with reuse
 * 'keep' (it keeps state).
 */
async function start(): Promise<Runtime> {
  const { rt } = await track({ workers: 2 });
  await rt.register('double', guestBytes('skel_double'));
  await rt.register('sum', guestBytes('skel_sum'));
  await rt.register('sub', guestBytes('skel_sub'));
  await rt.register('echo', guestBytes('skel_faulty'));
  await rt.register('counter', guestBytes('core_counter'), { reuse: 'keep' });
  return rt;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Plain u32 vectors of varied lengths. */
const vectors = Array.from({ length: 12 }, (_, i) => u32s(...Array.from({ length: 1 + (i % 5) }, (_, j) => i * 100 + j)));
/** Framed lists of one-u32 parts (map items whose parts sum). */
const lists = Array.from({ length: 8 }, (_, i) => frame(Array.from({ length: 2 + i }, (_, j) => u32s(i * 1000 + j * 7))));

function refusal(fn: () => unknown): NuvolaError {
  try {
    fn();
  } catch (err) {
    return err as NuvolaError;
  }
  throw new Error('expected the rewrite to be refused');
}

function expectRefused(rule: RuleName, fn: () => unknown): NuvolaError {
  const err = refusal(fn);
  expect(err.name).toBe('SkeletonError');
  expect(err.code).toBe('E_REWRITE_REFUSED');
  expect(err.details['rule']).toBe(rule);
  expect(err.details['condition']).toBe(RULES[rule].condition);
  expect(typeof err.details['condition']).toBe('string');
  return err;
}

/** Runs both skeletons over `inputs` and expects the same outputs (in order, or as a multiset). */
async function expectSameOutputs(rt: Runtime, before: Skeleton, after: Skeleton, inputs: Uint8Array[], ordered = true): Promise<string[]> {
  const a = (await runAll(rt, before, inputs)).map(hex);
  const b = (await runAll(rt, after, inputs)).map(hex);
  expect(a).toHaveLength(inputs.length);
  if (ordered) expect(b).toEqual(a);
  else expect([...b].sort()).toEqual([...a].sort());
  return a;
}

describe('rewrite rules: the rewritten skeleton computes the same outputs', () => {
  it('pipeFlatten: pipe(a, pipe(b, c)) → pipe(a, b, c)', async () => {
    const rt = await start();
    const before = pipe('double', pipe('echo', farm('double')), pipe(seq('double')));
    const after = rewrite(before, 'pipeFlatten');
    expect(after.kind).toBe('pipe');
    const stages = (after as Extract<Skeleton, { kind: 'pipe' }>).stages;
    expect(stages.map((s) => s.kind)).toEqual(['seq', 'seq', 'farm', 'seq']);
    const outs = await expectSameOutputs(rt, before, after, vectors);
    expect(outs[3]).toBe(hex(u32s(...[300, 301, 302, 303].map((x) => x * 8))));
  });

  it('fusion: pipe(seq f, seq g) → seq(f; g), one task on one worker', async () => {
    const rt = await start();
    const before = pipe('double', seq('echo', 'double'), 'double');
    const after = rewrite(before, 'fusion');
    expect(after).toEqual({ kind: 'seq', fns: ['double', 'echo', 'double', 'double'], stateful: false });
    await expectSameOutputs(rt, before, after, vectors);
    // Fusing a stage declared stateful keeps the declaration.
    expect(rewrite(pipe(seq('echo', { stateful: true }), 'double'), 'fusion')).toMatchObject({ kind: 'seq', stateful: true });
  });

  it('farmIntro: s → farm(s), with the replica count asked for', async () => {
    const rt = await start();
    const before = pipe('double', 'echo');
    const after = rewrite(before, 'farmIntro', { rt }, { replicas: 3 });
    expect(after).toMatchObject({ kind: 'farm', replicas: 3, ordered: true, worker: before });
    await expectSameOutputs(rt, before, after, vectors);
    expect(rewrite(seq('double'), 'farmIntro')).toMatchObject({ kind: 'farm', replicas: 'auto' });
  });

  it('farmElim: farm(s) → s', async () => {
    const rt = await start();
    const before = farm(seq('double', 'double'), { replicas: 4 });
    const after = rewrite(before, 'farmElim', { rt });
    expect(after).toEqual(seq('double', 'double'));
    await expectSameOutputs(rt, before, after, vectors);
  });

  it('farmPipe: pipe(farm a, farm b) → farm(pipe(a, b)), ordered only if both were', async () => {
    const rt = await start();
    const before = pipe(farm('double', { replicas: 2 }), farm(seq('echo', 'double'), { replicas: 3 }));
    const after = rewrite(before, 'farmPipe', { rt });
    expect(after).toMatchObject({ kind: 'farm', replicas: 3, ordered: true, worker: { kind: 'pipe' } });
    await expectSameOutputs(rt, before, after, vectors);

    const unorderedBefore = pipe(farm('double', { ordered: false }), farm('double'));
    const unorderedAfter = rewrite(unorderedBefore, 'farmPipe', { rt });
    expect(unorderedAfter).toMatchObject({ kind: 'farm', replicas: 'auto', ordered: false });
    await expectSameOutputs(rt, unorderedBefore, unorderedAfter, vectors, false);
  });

  it('mapFusion: pipe(map(f, P, framed), map(g, framed, G2)) → map(pipe(f, g), P, G2)', async () => {
    const rt = await start();
    const before = pipe(map('double'), map('echo', { partition: partitions.framed(), gather: gathers.concat() }));
    const after = rewrite(before, 'mapFusion');
    expect(after.kind).toBe('map');
    const m = after as Extract<Skeleton, { kind: 'map' }>;
    expect(m.partition.name).toBe('framed');
    expect(m.gather.name).toBe('concat');
    expect(m.worker).toMatchObject({ kind: 'pipe', stages: [seq('double'), seq('echo')] });
    const inputs = vectors.slice(0, 6).map((_, i) => frame(vectors.slice(i, i + 3)));
    const outs = await expectSameOutputs(rt, before, after, inputs);
    expect(outs[0]).toBe(
      hex(Buffer.concat(vectors.slice(0, 3).map((v) => u32s(...new Uint32Array(Uint8Array.from(v).buffer).map((x) => x * 2))))),
    );
  });

  it('mapReduceFusion: pipe(map(f, P, framed), reduce(r)) → map(f, P, reduce(r)), commutative or not', async () => {
    const rt = await start();
    for (const commutative of [false, true]) {
      const r = reduce('sum', { associative: true, commutative });
      const before = pipe(map('double'), r);
      const after = rewrite(before, 'mapReduceFusion');
      expect(after).toMatchObject({ kind: 'map', worker: seq('double'), gather: { kind: 'reduce', reduce: r } });
      const outs = await expectSameOutputs(rt, before, after, lists);
      const expected = unframe(lists[5]!).reduce((a, v) => (a + 2 * new DataView(v.buffer, v.byteOffset, 4).getUint32(0, true)) >>> 0, 0);
      expect(outs[5]).toBe(hex(u32s(expected)));
    }
  });
});

describe('rewrite rules: refused when the side condition fails', () => {
  it('pipeFlatten: a pipe with no nested pipe, or not a pipe', () => {
    expectRefused('pipeFlatten', () => rewrite(pipe('double', farm('echo')), 'pipeFlatten'));
    expectRefused('pipeFlatten', () => rewrite(farm(pipe('double', 'echo')), 'pipeFlatten'));
  });

  it('fusion: a farm (or any non-seq) stage', () => {
    const err = expectRefused('fusion', () => rewrite(pipe('double', farm('echo')), 'fusion'));
    expect(err.message).toMatch(/farm/);
    expectRefused('fusion', () => rewrite(pipe('double', map('echo')), 'fusion'));
    expectRefused('fusion', () => rewrite(seq('double'), 'fusion'));
  });

  it('farmIntro: a function registered with reuse keep, declared stateful, or named stateful in the context', async () => {
    const rt = await start();
    expect(statefulFunctions(pipe('double', 'counter'), { rt })).toEqual(['counter']);
    expect(statefulFunctions(pipe('double', 'counter'))).toEqual([]);
    const err = expectRefused('farmIntro', () => rewrite(pipe('double', 'counter'), 'farmIntro', { rt }));
    expect(err.message).toMatch(/'counter' keeps state/);
    expectRefused('farmIntro', () => rewrite(seq('echo', { stateful: true }), 'farmIntro'));
    expectRefused('farmIntro', () => rewrite(seq('echo'), 'farmIntro', { stateful: ['echo'] }));
    // Deep inside: a reduce, a map's worker, an iterate's body.
    expectRefused('farmIntro', () => rewrite(map(iterate(reduce('counter'), { maxIterations: 2 })), 'farmIntro', { rt }));
  });

  it('farmElim: a stateful worker, or not a farm', async () => {
    const rt = await start();
    expectRefused('farmElim', () => rewrite(farm('counter'), 'farmElim', { rt }));
    expectRefused('farmElim', () => rewrite(farm(seq('double', { stateful: true })), 'farmElim'));
    expectRefused('farmElim', () => rewrite(seq('double'), 'farmElim'));
  });

  it('farmPipe: a stateful farm worker, a stage that is no farm, a single stage', async () => {
    const rt = await start();
    expectRefused('farmPipe', () => rewrite(pipe(farm('counter'), farm('double')), 'farmPipe', { rt }));
    expectRefused('farmPipe', () => rewrite(pipe(farm('double'), farm(seq('echo', { stateful: true }))), 'farmPipe'));
    expectRefused('farmPipe', () => rewrite(pipe(farm('double'), 'echo'), 'farmPipe'));
    expectRefused('farmPipe', () => rewrite(pipe(farm('double')), 'farmPipe'));
  });

  it("mapFusion: the second map's partition does not undo the first map's gather (concat then chunks)", () => {
    const chunked = map('double', { partition: partitions.chunks(2, 4), gather: gathers.concat() });
    const err = expectRefused('mapFusion', () => rewrite(pipe(chunked, chunked), 'mapFusion'));
    expect(err.message).toMatch(/chunks\(2,4\).*concat/);
    expectRefused('mapFusion', () => rewrite(pipe(map('double', { gather: gathers.concat() }), map('double')), 'mapFusion'));
    expectRefused('mapFusion', () =>
      rewrite(pipe(map('double', { gather: gathers.reduce(reduce('sum', { associative: true })) }), map('double')), 'mapFusion'),
    );
    expectRefused('mapFusion', () => rewrite(pipe(map('double'), map('double'), map('double')), 'mapFusion'));
  });

  it('mapReduceFusion: a reduce not declared associative, or a map that does not gather a framed list', () => {
    const err = expectRefused('mapReduceFusion', () => rewrite(pipe(map('double'), reduce('sub')), 'mapReduceFusion'));
    expect(err.message).toMatch(/'sub' is not declared associative/);
    expectRefused('mapReduceFusion', () =>
      rewrite(pipe(map('double', { gather: gathers.concat() }), reduce('sum', { associative: true })), 'mapReduceFusion'),
    );
    expectRefused('mapReduceFusion', () => rewrite(pipe(reduce('sum', { associative: true }), map('double')), 'mapReduceFusion'));
  });
});

describe('normalize and explain', () => {
  it('keeps a stateful stage as its own stage and farms the stateless runs around it', async () => {
    const rt = await start();
    const node = pipe('double', 'counter', 'double', farm('echo', { replicas: 2 }));
    const normal = normalize(node, { rt });
    expect(normal.kind).toBe('pipe');
    const stages = (normal as Extract<Skeleton, { kind: 'pipe' }>).stages;
    expect(stages).toHaveLength(3);
    expect(stages[0]).toMatchObject({ kind: 'farm', worker: seq('double') });
    expect(stages[1]).toEqual(seq('counter'));
    expect(stages[2]).toMatchObject({ kind: 'farm', replicas: 2, worker: { kind: 'seq', fns: ['double', 'echo'] } });
    // Without the runtime, normalize does not know counter keeps state.
    expect(normalize(node)).toMatchObject({ kind: 'farm', worker: { kind: 'seq', fns: ['double', 'counter', 'double', 'echo'] } });
    // A stage declared stateful stays, and the result computes the same outputs.
    const declared = pipe('double', seq('echo', { stateful: true }), 'double');
    const declaredNormal = normalize(declared);
    expect(declaredNormal).toMatchObject({ kind: 'pipe', stages: [{ kind: 'farm' }, seq('echo', { stateful: true }), { kind: 'farm' }] });
    await expectSameOutputs(rt, declared, declaredNormal, vectors);
  });

  it('fuses nested pipes, maps and map–reduce into a skeleton with the same outputs', async () => {
    const rt = await start();
    const node = pipe(
      pipe(map('double'), map('echo')),
      map('double', { partition: partitions.framed(), gather: gathers.framed() }),
      reduce('sum', { associative: true, commutative: true }),
      pipe('double', 'echo'),
    );
    const steps: string[] = [];
    const normal = normalize(node, { rt }, steps);
    expect(steps).toEqual(expect.arrayContaining(['pipeFlatten', 'mapFusion', 'mapReduceFusion', 'fusion', 'farmIntro']));
    expect(normal).toMatchObject({
      kind: 'pipe',
      stages: [
        // The three maps fused, their worker normalized to farm(seq(double; echo; double)) and the farm removed.
        { kind: 'map', gather: { kind: 'reduce' }, worker: { kind: 'seq', fns: ['double', 'echo', 'double'] } },
        { kind: 'farm', worker: { kind: 'seq', fns: ['double', 'echo'] } },
      ],
    });
    await expectSameOutputs(rt, node, normal, lists);
    // Normalizing twice changes nothing more.
    expect(explain(normalize(normal, { rt }))).toBe(explain(normal));
  });

  it('leaves what it may not change: a non-associative reduce after a map, farms of farms', async () => {
    const rt = await start();
    const node = pipe(map('double'), reduce('sub'));
    expect(normalize(node, { rt })).toEqual(node);
    expect(normalize(farm(farm('double', { replicas: 2 }), { replicas: 5 }))).toMatchObject({
      kind: 'farm',
      replicas: 5,
      worker: seq('double'),
    });
    // A farm inside a map adds nothing and is removed.
    expect(normalize(map(farm('double')), { rt })).toMatchObject({ kind: 'map', worker: seq('double') });
  });

  it('leaves a farm of a stateful worker inside a map as it is (and returns)', async () => {
    // normalize is synchronous: run it in a child process so that a loop that never ends
    // fails this test instead of hanging the suite.
    const { stdout, stderr, code } = await runScript(
      `import { normalize, map, farm, seq } from 'nuvola/skeletons';
       const out = normalize(map(farm(seq('counter', { stateful: true }))));
       console.log(JSON.stringify({ kind: out.kind, worker: out.worker.kind }));`,
      [],
      5000,
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ kind: 'map', worker: 'farm' });
  });

  it('explain prints every node with its label', () => {
    const node = pipe(
      farm(seq('double', 'echo'), { replicas: 3, ordered: false }),
      map('double', { partition: partitions.chunks(2, 4), gather: gathers.concat() }),
      iterate(reduce('sum', { associative: true, commutative: true }), { maxIterations: 4 }),
      seq('counter', { stateful: true }),
    );
    const out = explain(node);
    for (const label of [
      'pipe (4 stages)',
      'farm ×3 unordered',
      'seq double ; echo',
      'map partition chunks(2,4), gather concat',
      'seq double',
      'iterate at most 4 times',
      'reduce sum associative commutative',
      'seq counter (stateful)',
    ]) {
      expect(out).toContain(label);
    }
    expect(out.split('\n')).toHaveLength(8);
    expect(out.split('\n')[0]).toBe('pipe (4 stages)');
    expect(explain(normalize(pipe('double', 'echo')))).toBe('farm ×auto ordered\n└─ seq double ; echo');
  });
});

describe('statefulness through registered skeletons', () => {
  it('a registered skeleton that wraps a reuse-keep function counts as stateful', async () => {
    const rt = await start();
    register(rt, 'counting', seq('counter'));
    const ctx: RewriteContext = { rt };
    // 'counting' calls counter, which keeps state: replicating it is what farmIntro forbids.
    expect(statefulFunctions(seq('counting'), ctx)).not.toEqual([]);
    expectRefused('farmIntro', () => rewrite(seq('counting'), 'farmIntro', ctx));
  });

  it('registered skeletons that name each other do not send the check round in circles', async () => {
    const rt = await start();
    register(rt, 'a', seq('double'));
    register(rt, 'b', seq('a'));
    rt.unregister('a');
    register(rt, 'a', seq('b'));
    expect(statefulFunctions(seq('a'), { rt })).toEqual([]);
    expect(normalize(pipe('a', 'b'), { rt }).kind).toBe('farm');
    // Running such a cycle is refused before anything starts.
    await expect(run(rt, seq('a'), u32s(1))).rejects.toMatchObject({ code: 'E_INVALID_SKELETON' });
  });
});

describe('a replaced registration is not taken for the skeleton', () => {
  it('a name unregistered and registered again as a plain handler is that handler', async () => {
    const rt = await start();
    register(rt, 'x', seq('counter'));
    expect(statefulFunctions(seq('x'), { rt })).toEqual(['x']);
    rt.unregister('x');
    rt.registerHandler('x', (input) => Promise.resolve(input));
    expect(statefulFunctions(seq('x'), { rt })).toEqual([]);
    expect(readU32s(await run(rt, seq('x'), u32s(7)))).toEqual([7]);
  });
});

describe('normalize keeps order', () => {
  it('farm(farm(s, unordered)) stays ordered: the inner farm never reorders', () => {
    const inner = farm('double', { ordered: false });
    const n = normalize(farm(inner));
    expect(n.kind).toBe('farm');
    expect((n as { ordered: boolean }).ordered).toBe(true);
    expect((normalize(farm(pipe(inner, 'sum'))) as { ordered: boolean }).ordered).toBe(true);
  });
});
