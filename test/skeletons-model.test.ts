import { describe, expect, it } from 'vitest';
import type { Runtime } from 'nuvola';
import {
  DEFAULT_TRANSPORT,
  Profile,
  calibrate,
  calibrateTransport,
  chooseReplicas,
  farm,
  normalize,
  paysOff,
  pipe,
  predict,
  seq,
  type Prediction,
  type Skeleton,
} from 'nuvola/skeletons';
import {
  FILTERS,
  imagePipeline,
  makeImages,
  makeText,
  mandelRows,
  mandelSkeleton,
  matmulProblem,
  matmulSkeleton,
  wordCountSkeleton,
} from '../dist/examples/06-skeletons/apps.js';
import { closedAfterEach, guestBytes } from './helpers.js';
import { withAppGuests } from './skeleton-helpers.js';

const track = closedAfterEach();

async function withApps(): Promise<Runtime> {
  return withAppGuests((await track({ workers: 2 })).rt);
}

function expectSane(p: Prediction): void {
  for (const v of [p.completionMs, p.latencyMs, p.serviceMs, p.workMs]) {
    expect(Number.isFinite(v)).toBe(true);
    expect(v).toBeGreaterThan(0);
  }
  expect(p.completionMs).toBeGreaterThanOrEqual(p.latencyMs * 0.999);
}

const mandel = { width: 160, height: 16, maxIter: 3000 };

describe('cost model: calibrate and predict', () => {
  it('a calibrated farm: positive finite figures, completion grows with items, 2 workers beat 1', async () => {
    const rt = await withApps();
    const rows = mandelRows(mandel);
    const profile = await calibrate(rt, mandelSkeleton(), rows);
    expect(profile.workers).toBe(2);
    // Every row was measured once (the warm-up pass is not recorded).
    expect(profile.calls.get('mandel_row')!.sizes).toHaveLength(mandel.height);
    const node = mandelSkeleton();
    const at = (items: number, workers?: number): Prediction =>
      predict(profile, node, { items, itemBytes: 16, ...(workers === undefined ? {} : { workers }), cores: 8 });
    for (const n of [1, 10, 100]) expectSane(at(n));
    expect(at(10).completionMs).toBeGreaterThan(at(1).completionMs);
    expect(at(100).completionMs).toBeGreaterThan(at(10).completionMs);
    // Compute-bound: two workers are predicted faster than one on a long stream.
    expect(at(100, 2).completionMs).toBeLessThan(at(100, 1).completionMs);
    expect(at(100, 2).serviceMs).toBeLessThan(at(100, 1).serviceMs);
    // The latency of one item does not depend on the stream's length.
    expect(at(100).latencyMs).toBeCloseTo(at(1).latencyMs, 6);
    // The profile serializes.
    const json = JSON.parse(JSON.stringify(profile)) as { calls: Record<string, unknown>; workers: number };
    expect(Object.keys(json.calls)).toEqual(['mandel_row']);
    expect(json.workers).toBe(2);
  });

  it('a calibrated pipe and its normal form: the normal form is not predicted slower', async () => {
    const rt = await withApps();
    const images = makeImages(3, 48, 48);
    const original = imagePipeline();
    const normal = normalize(original, { rt });
    const profile = await calibrate(rt, original, images);
    expect([...profile.calls.keys()].sort()).toEqual([...FILTERS].sort());
    const workload = { items: 50, itemBytes: images[0]!.byteLength, cores: 2 };
    expectSane(predict(profile, original, workload));
    expectSane(predict(profile, normal, workload));
    const verdict = paysOff(profile, original, normal, workload);
    expect(verdict.afterMs).toBeLessThanOrEqual(verdict.beforeMs);
    expect(verdict.speedup).toBeCloseTo(verdict.beforeMs / verdict.afterMs, 9);
    expect(verdict.paysOff).toBe(verdict.afterMs < verdict.beforeMs * 0.98);
    // A rewrite compared with itself never pays off.
    expect(paysOff(profile, normal, normal, workload).paysOff).toBe(false);
  });

  it('chooseReplicas answers between 1 and 2 × workers, with that farm’s prediction', async () => {
    const rt = await withApps();
    const profile = await calibrate(rt, mandelSkeleton(), mandelRows(mandel));
    for (const workers of [1, 2, 4]) {
      const choice = chooseReplicas(profile, seq('mandel_row'), { items: 40, itemBytes: 16, workers, cores: 8 });
      expect(Number.isInteger(choice.replicas)).toBe(true);
      expect(choice.replicas).toBeGreaterThanOrEqual(1);
      expect(choice.replicas).toBeLessThanOrEqual(2 * workers);
      expectSane(choice.prediction);
      expect(choice.prediction).toEqual(
        predict(profile, farm('mandel_row', { replicas: choice.replicas }), { items: 40, itemBytes: 16, workers, cores: 8 }),
      );
    }
    // More than one worker's worth of compute: more than one replica.
    expect(chooseReplicas(profile, seq('mandel_row'), { items: 40, itemBytes: 16, workers: 4, cores: 8 }).replicas).toBeGreaterThan(1);
  });

  it('calibrates word count and matmul and predicts them; shapes are recorded', async () => {
    const rt = await withApps();
    const wc = wordCountSkeleton(4);
    const text = new TextEncoder().encode(makeText(2000));
    const wcProfile = await calibrate(rt, wc, [text]);
    expect(wcProfile.shape('parts:text(4)', 0)).toBe(4);
    // Samples may be strings, as invoke's inputs may.
    const fromText = await calibrate(rt, wc, [makeText(2000)]);
    expect(fromText.shape('parts:text(4)', 0)).toBe(4);
    expectSane(predict(wcProfile, wc, { items: 1, itemBytes: text.byteLength }));
    const mm = matmulSkeleton(16);
    const problem = matmulProblem(32);
    const mmProfile = await calibrate(rt, mm, [problem]);
    expect(mmProfile.shape('arity:mm_divide', 0)).toBe(8);
    expectSane(predict(mmProfile, mm, { items: 1, itemBytes: problem.byteLength }));
    // A bigger problem is predicted to take longer.
    expect(predict(mmProfile, mm, { items: 1, itemBytes: matmulProblem(64).byteLength }).latencyMs).toBeGreaterThan(
      predict(mmProfile, mm, { items: 1, itemBytes: problem.byteLength }).latencyMs,
    );
  });

  it('predicting a function the profile never measured throws, naming it', async () => {
    const rt = await withApps();
    const profile = await calibrate(rt, mandelSkeleton(), mandelRows({ width: 20, height: 4, maxIter: 20 }));
    expect(() => predict(profile, pipe('mandel_row', 'img_gamma'), { items: 2, itemBytes: 16 })).toThrow(/'img_gamma'/);
  });

  it('calibrateTransport measures positive α, β and dispatch cost', async () => {
    const rt = await withApps();
    const t = await calibrateTransport(rt, 'echo', 20);
    expect(t.parallelDataSlowdown).toBeGreaterThanOrEqual(1);
    for (const v of [t.alphaMs, t.bytesPerMs, t.dispatchMs, t.parallelDataSlowdown]) {
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThan(0);
    }
  });
});

describe('cost model: fits', () => {
  /** A profile whose 'f' follows compute = 0.002 · size^1.5 ms and output = 2 · size bytes exactly. */
  function synthetic(): Profile {
    const transport = { ...DEFAULT_TRANSPORT, dispatchMs: 0 };
    const profile = new Profile(transport, 2, 2);
    for (const size of [100, 300, 1000, 3000, 10_000, 30_000]) {
      const out = 2 * size;
      const compute = 0.002 * size ** 1.5;
      const ms = transport.alphaMs + (size + out) / transport.bytesPerMs + compute;
      for (let r = 0; r < 3; r++) profile.record(profile.calls, 'f', size, ms, out, 0.01);
    }
    return profile;
  }

  it('recovers a power law from samples within a few percent, inside and outside the sampled sizes', () => {
    const profile = synthetic();
    const { alphaMs, bytesPerMs } = profile.transport;
    for (const size of [100, 550, 2000, 30_000, 100_000]) {
      const expected = alphaMs + (size + 2 * size) / bytesPerMs + 0.002 * size ** 1.5;
      expect(Math.abs(profile.callMs('f', size) / expected - 1)).toBeLessThan(0.03);
      expect(Math.abs(profile.outBytes('f', size) / (2 * size) - 1)).toBeLessThan(0.03);
    }
  });

  it('the law follows the mean at a size, slow calls included (a completion time is a sum of calls)', () => {
    const profile = new Profile({ ...DEFAULT_TRANSPORT, alphaMs: 0, bytesPerMs: 1e12 }, 2, 2);
    for (const ms of [1, 1, 1, 5]) profile.record(profile.calls, 'f', 1000, ms, 1000, 0.1);
    expect(profile.callMs('f', 1000)).toBeCloseTo(2, 6);
    // One size only: taken as proportional to the size.
    expect(profile.callMs('f', 2000)).toBeCloseTo(4, 6);
  });

  it('two samples of nearly the same size (0.8% apart) give finite, sane predictions', () => {
    // Measured in a word-count calibration: the two reducers' inputs. They fall into
    // different 5% size groups, and a law through two points so close is not a law.
    const profile = new Profile(DEFAULT_TRANSPORT, 2, 2);
    profile.record(profile.calls, 'f', 13875, 1.018, 8251, 1.018);
    profile.record(profile.calls, 'f', 13989, 0.915, 8413, 0.154);
    for (const size of [7000, 13932, 28000]) {
      expect(Number.isFinite(profile.callMs('f', size))).toBe(true);
      expect(Number.isFinite(profile.mainMs('f', size))).toBe(true);
      expect(Number.isFinite(profile.outBytes('f', size))).toBe(true);
    }
    expect(profile.callMs('f', 13932)).toBeGreaterThan(0.4);
    expect(profile.callMs('f', 13932)).toBeLessThan(2);
    // Half the input is not predicted to cost ten times as much.
    expect(profile.callMs('f', 7000)).toBeLessThan(10 * profile.callMs('f', 13932));
    const p = predict(profile, farm('f'), { items: 10, itemBytes: 13900 });
    expect(Number.isFinite(p.completionMs)).toBe(true);
  });

  it('a farm of a synthetic function scales with workers until the cores run out', () => {
    const profile = synthetic();
    const node: Skeleton = farm('f');
    const w = (workers: number, cores: number): number =>
      predict(profile, node, { items: 1000, itemBytes: 10_000, workers, cores }).completionMs;
    expect(w(2, 8)).toBeLessThan(w(1, 8) * 0.6);
    expect(w(4, 8)).toBeLessThan(w(2, 8) * 0.6);
    // Four workers on two cores are no faster than two.
    expect(w(4, 2)).toBeGreaterThanOrEqual(w(2, 2) * 0.99);
  });

  it('a workload of no items takes no time; a malformed workload is refused with E_INVALID_OPTION', () => {
    const profile = synthetic();
    expect(predict(profile, farm('f'), { items: 0, itemBytes: 10_000 }).completionMs).toBe(0);
    for (const bad of [{ items: -1 }, { items: 1.5 }, { workers: 0 }, { cores: 0 }]) {
      expect(() => predict(profile, farm('f'), { items: 10, itemBytes: 10_000, ...bad })).toThrow(
        expect.objectContaining({ code: 'E_INVALID_OPTION' }) as Error,
      );
    }
  });

  it('host steps are linear in their bytes; shapes average; unknown ones fall back', () => {
    const profile = new Profile(DEFAULT_TRANSPORT, 2, 2);
    profile.record(profile.host, 'gather:framed', 1000, 0.5);
    profile.record(profile.host, 'gather:framed', 3000, 1.5);
    expect(profile.hostMs('gather:framed', 2000)).toBeCloseTo(1.0, 9);
    expect(profile.hostMs('gather:never', 2000)).toBe(0);
    profile.shapes.set('parts:x', [2, 4]);
    expect(profile.shape('parts:x', 9)).toBe(3);
    expect(profile.shape('parts:y', 9)).toBe(9);
  });
});

describe('cost model: items the same size that differ in work', () => {
  // core_busy burns the number of million iterations in its input: "1" and "3" are one byte each.
  async function busy(): Promise<Runtime> {
    const { rt } = await track({ workers: 1 });
    await rt.register('busy', guestBytes('core_busy'));
    return rt;
  }

  it('says so when calibration samples of one size took very different times', async () => {
    const rt = await busy();
    const profile = await calibrate(rt, seq('busy'), ['1', '6']);
    const p = predict(profile, seq('busy'), { items: 4, itemBytes: 1 });
    expect(p.warnings?.join(' ')).toMatch(/size does not explain their work.*cost hint/);
    // A size far outside the samples is said too.
    expect(predict(profile, seq('busy'), { items: 4, itemBytes: 1000 }).warnings?.join(' ')).toMatch(/itemBytes 1000 lies outside/);
  });

  it('with a cost hint, scales each item by its cost and warns only outside the calibrated costs', async () => {
    const rt = await busy();
    const cost = (item: Uint8Array): number => Number(new TextDecoder().decode(item));
    const profile = await calibrate(rt, seq('busy'), ['1', '3', '2'], { cost });
    expect(profile.meanCost()).toBe(2);
    const one = predict(profile, seq('busy'), { items: 1, itemBytes: 1, itemCost: 1 });
    const four = predict(profile, seq('busy'), { items: 1, itemBytes: 1, itemCost: 4 });
    expect(one.warnings).toBeUndefined();
    expect(four.warnings).toBeUndefined();
    // Compute scales exactly with the cost; the fixed per-call transport does not.
    expect(four.latencyMs / one.latencyMs).toBeGreaterThan(3);
    expect(four.latencyMs / one.latencyMs).toBeLessThanOrEqual(4);
    // Without itemCost: the calibrated mean (2).
    const mean = predict(profile, seq('busy'), { items: 1, itemBytes: 1 });
    expect(mean.latencyMs).toBeGreaterThan(one.latencyMs);
    expect(mean.latencyMs).toBeLessThan(four.latencyMs);
    expect(predict(profile, seq('busy'), { items: 1, itemBytes: 1, itemCost: 20 }).warnings?.join(' ')).toMatch(
      /itemCost 20 lies outside the calibrated costs/,
    );
  });

  it('refuses a cost hint that is not a positive number, and mixing hinted and unhinted calibration', async () => {
    const rt = await busy();
    const err = await calibrate(rt, seq('busy'), ['1'], { cost: () => 0 }).catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe('E_INVALID_OPTION');
    const profile = await calibrate(rt, seq('busy'), ['1'], { warmUp: false });
    const mixed = await calibrate(rt, seq('busy'), ['1'], { into: profile, cost: () => 1, warmUp: false }).catch((e: unknown) => e);
    expect((mixed as { message: string }).message).toMatch(/calibrated without a cost hint/);
  });

  it('refuses a sample that is not an input as run() does (E_INVALID_OPTION), before any call', async () => {
    const rt = await busy();
    const before = rt.stats().completed;
    const err = await calibrate(rt, seq('busy'), [5 as unknown as Uint8Array]).catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe('E_INVALID_OPTION');
    expect(rt.stats().completed).toBe(before);
  });
});
