/**
 * A soak of mixed guests — echo, traps and aborts, timeouts, state, chains — in a fresh process
 * with --expose-gc, checking every answer and that memory is flat after warm-up. 200 000 calls
 * by default; NUVOLA_SOAK_CALLS sets another count (a multiple of 10 000).
 */
import { describe, expect, it } from 'vitest';
import { guestPath, runScript } from './helpers.js';

const CALLS = Number(process.env['NUVOLA_SOAK_CALLS'] ?? 200_000);

interface SoakReport {
  calls: number;
  wrong: string[];
  codes: Record<string, number>;
  /** After each 10 000 calls, after a full collection. */
  checkpoints: { calls: number; rssMB: number; heapMB: number; seconds: number }[];
  stats: { workers: number; workerRestarts: number; instances: number; completed: number; failed: number };
  stateCounts: { expected: number; counted: number };
}

/**
 * The child's script. Each round is 500 concurrent calls drawn from a fixed mix; every 2000th
 * call, between rounds, one call of a looping guest runs alone past its 50 ms timeout (its
 * worker is terminated and replaced, so no other call may be on it then).
 */
function script(calls: number): string {
  const path = (name: string): string => JSON.stringify(guestPath(name));
  return `
    import { createRuntime } from 'nuvola';
    const rt = await createRuntime({ workers: 2, logger: () => {} });
    await rt.register('echo', ${path('core_echo')});
    await rt.register('trap', ${path('core_unreachable')});
    await rt.register('abort', ${path('core_abort')});
    await rt.register('loop', ${path('core_loop')}, { timeoutMs: 50 });
    await rt.register('count', ${path('state_local_count')});
    await rt.register('roundtrip', ${path('state_roundtrip')});
    await rt.register('fan', ${path('chain_fan')});
    await rt.register('leaf', ${path('core_hello')});
    await rt.register('check', ${path('chain_check')});
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const ints = (...v) => new Uint8Array(Int32Array.from(v).buffer);
    const wrong = [];
    const codes = {};
    const counted = new Map();
    let stateCalls = 0;
    const note = (code) => { codes[code] = (codes[code] ?? 0) + 1; };
    const expectCode = (p, code, what) => p.then(
      () => wrong.push(what + ': succeeded, expected ' + code),
      (e) => { note(e.code); if (e.code !== code) wrong.push(what + ': ' + e.code + ' ' + e.message); });
    const ok = (p, what, check) => p.then(
      (r) => { note('ok'); const bad = check(r); if (bad) wrong.push(what + ': ' + bad); },
      (e) => { note(e.code); wrong.push(what + ': ' + e.code + ' ' + e.message); });
    // One call of the mix; i picks which.
    const one = (i) => {
      const k = i % 20;
      if (k < 8) {
        const input = enc.encode('soak ' + i);
        return ok(rt.invoke('echo', input), 'echo', (r) =>
          r.returnCode === input.length && dec.decode(r.output) === [...'soak ' + i].reverse().join('') ? '' : 'bad echo');
      }
      if (k === 8) return expectCode(rt.invoke('trap'), 'E_GUEST_TRAP', 'trap');
      if (k === 9) return expectCode(rt.invoke('abort', enc.encode('not fine')), 'E_GUEST_ABORT', 'abort');
      if (k === 10) return ok(rt.invoke('abort', enc.encode('fine')), 'abort(fine)', (r) => (r.returnCode === 0 ? '' : 'bad code'));
      if (k < 14) {
        const key = 'soak:' + (i % 8);
        stateCalls++;
        return ok(rt.invoke('count', enc.encode(key)), 'count', (r) => {
          counted.set(key, Math.max(counted.get(key) ?? 0, r.returnCode));
          return r.returnCode > 0 ? '' : 'bad count';
        });
      }
      if (k < 16) return ok(rt.invoke('roundtrip', enc.encode('soak:rt:' + (i % 16))), 'roundtrip', (r) =>
        r.output.join() === '3,2,1,0,3,2,1,0' ? '' : 'bad roundtrip ' + r.output.join());
      if (k < 18) return ok(rt.invoke('fan', ints(2)), 'fan', (r) => (r.returnCode === 0 ? '' : 'bad fan ' + r.returnCode));
      return ok(rt.invoke('check', ints(3, 4, 5)), 'check', (r) => (r.returnCode === 0 ? '' : 'bad check ' + r.returnCode));
    };
    const checkpoints = [];
    const started = performance.now();
    let done = 0;
    while (done < ${calls}) {
      const round = Math.min(500, ${calls} - done);
      await Promise.all(Array.from({ length: round }, (_, j) => one(done + j)));
      done += round;
      if (done % 2000 === 0) await expectCode(rt.invoke('loop', enc.encode('loop')), 'E_TIMEOUT', 'loop');
      if (done % 10000 === 0) {
        globalThis.gc();
        const m = process.memoryUsage();
        const st = rt.stats();
        checkpoints.push({ calls: done, rssMB: +(m.rss / 2 ** 20).toFixed(1), heapMB: +(m.heapUsed / 2 ** 20).toFixed(1), instances: st.instances, spares: st.spareMemories,
          seconds: +((performance.now() - started) / 1000).toFixed(1) });
      }
    }
    const s = rt.stats();
    const stats = { workers: s.workers, workerRestarts: s.workerRestarts, instances: s.instances, completed: s.completed, failed: s.failed };
    console.log(JSON.stringify({ calls: done, wrong: wrong.slice(0, 20), codes, checkpoints, stats,
      stateCounts: { expected: stateCalls, counted: [...counted.values()].reduce((a, b) => a + b, 0) } }));
    await rt.close();
  `;
}

describe('soak', () => {
  it(
    `${CALLS} calls of mixed guests (echo, traps, timeouts, state, chains) keep memory flat after warm-up`,
    async () => {
      const { stdout, stderr, code } = await runScript(script(CALLS), ['--expose-gc'], CALLS * 5);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const report = JSON.parse(stdout) as SoakReport;
      if (process.env['NUVOLA_SOAK_CALLS'] !== undefined) console.log(JSON.stringify(report.checkpoints));
      expect(report.wrong).toEqual([]);
      expect(report.calls).toBe(CALLS);
      // Every local count is exact: one host, each call under the key's write lock.
      expect(report.stateCounts.counted).toBe(report.stateCounts.expected);
      // Only the looping guest's timeouts may cost a worker, one each at most (one that is still
      // queued at its deadline — its worker still starting after the last one — costs none).
      const timeouts = Math.floor(CALLS / 2000);
      expect(report.codes['E_TIMEOUT']).toBe(timeouts);
      expect(report.codes['E_WORKER_LOST']).toBeUndefined();
      expect(report.stats.workerRestarts).toBeLessThanOrEqual(timeouts);
      expect(report.stats.workers).toBe(2);
      // Flat after warm-up: the median of the last three checkpoints against the median of the
      // three from the middle (100k–120k against 180k–200k), each after a full collection. Since
      // looping calls are interrupted instead of costing their worker, the workers live on: rss
      // climbs for the first ~20k calls (instances and spare memories: 74 and 64 from 10k on) and
      // then creeps — 3 to 34 MB between those medians in five runs (the main heap stays flat),
      // which replaced workers used to hide. Not explained yet (worker heaps or the allocator);
      // the bound stays tight enough to catch a leak of ~0.6 KB per call.
      const points = report.checkpoints;
      const half = Math.max(0, Math.floor(points.length / 2) - 1);
      const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const middle = points.slice(half, half + 3);
      const end = points.slice(-3);
      expect(median(end.map((p) => p.rssMB)) - median(middle.map((p) => p.rssMB))).toBeLessThan(48);
      expect(median(end.map((p) => p.heapMB)) - median(middle.map((p) => p.heapMB))).toBeLessThan(4);
    },
    Math.max(120_000, CALLS * 6),
  );
});
