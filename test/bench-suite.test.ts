// `nuvola bench suite --size test`: every workload on nuvola (warm and cold), piscina and the
// main thread, every output checked against the reference. No timing is asserted (timing goals
// belong to the benchmark); the suite's own code is loaded from dist/, as the CLI runs it.
import { describe, expect, it } from 'vitest';
import { benchSuite, runWorkloads, SuiteMismatchError, SUITE_DEFAULTS, type SuiteRow } from '../dist/bench/suite/run.js';
import { WORKLOADS } from '../dist/bench/suite/index.js';
import { formatSuite } from '../dist/bench/suite/report.js';
import { compress } from '../dist/bench/suite/compression/reference.js';
import { text, utf8 } from '../dist/bench/suite/random.js';
import type { Workload } from '../dist/bench/suite/types.js';

describe('nuvola bench suite', () => {
  it('runs every workload at --size test with --cold, each output verified, and reports every metric', async () => {
    const steps: number[] = [];
    const report = await benchSuite({ ...SUITE_DEFAULTS, size: 'test', runs: 1, cold: true, onStep: (done) => steps.push(done) });
    const rows = report.rows as SuiteRow[];
    expect(rows).toHaveLength(WORKLOADS.length * 5);
    for (const w of WORKLOADS) {
      for (const system of ['nuvola', 'nuvola restore', 'nuvola cold', 'piscina', 'direct'] as const) {
        const row = rows.find((r) => r.workload === w.name && r.system === system);
        expect(row, `${w.name} on ${system}`).toBeDefined();
        expect(row!.samples).toBe(1);
        expect(row!.clientMs).toBeGreaterThan(0);
        if (w.timed === false) {
          // A workflow: its makespan only (no one function's execution to time).
          expect(row!.execMs).toBeNaN();
          continue;
        }
        expect(row!.execMs).toBeGreaterThan(0);
        // Execution is measured inside the call, so within the client's span.
        expect(row!.clientMs).toBeGreaterThanOrEqual(row!.execMs);
        expect(row!.memoryBytes).toBeGreaterThan(0);
        expect(row!.gbSeconds).toBeGreaterThan(0);
      }
    }
    expect(steps).toEqual(Array.from({ length: steps.length }, (_, i) => i + 1));
    expect(steps.length).toBe(WORKLOADS.length * 9);
    const files = Object.keys(report.attachments ?? {});
    expect(files).toEqual(
      expect.arrayContaining(['suite.html', 'suite-execution.svg', 'suite-overhead.svg', 'suite-cold.svg', 'suite-gbs.svg']),
    );
    expect(report.attachments!['suite.html']).toContain('<img src="suite-client.svg"');
    const table = formatSuite(report);
    for (const w of WORKLOADS) expect(table).toContain(`| ${w.name}`);
  }, 300_000);

  it('fails the run when an output differs from the reference', async () => {
    const alu = WORKLOADS.find((w) => w.name === 'alu')!;
    // The main thread's answer is off by one: nuvola's (right) answer no longer matches it.
    const broken: Workload = {
      ...alu,
      name: 'alu-broken',
      folder: 'alu',
      js: async (task, input) => {
        const r = await task('alu', input);
        return { ...r, output: utf8(String(Number(text(r.output)) + 1)) };
      },
    };
    const run = runWorkloads([broken], { ...SUITE_DEFAULTS, size: 'test', runs: 1 });
    await expect(run).rejects.toBeInstanceOf(SuiteMismatchError);
    await expect(run).rejects.toThrow(/alu-broken on nuvola: alu: output differs from the reference at byte/);
  }, 120_000);

  it("every workload's check refuses a corrupted output", () => {
    for (const w of WORKLOADS) {
      const input = w.input('test');
      const expected = w.name === 'compression' ? compress(input) : utf8(`reference answer of ${w.name}`);
      w.check(input, expected, expected);
      const corrupted = expected.slice();
      corrupted[corrupted.length >> 1]! ^= 1;
      expect(() => w.check(input, corrupted, expected), w.name).toThrow();
    }
  });

  it('refuses an unknown workload, naming the known ones', () => {
    expect(() => benchSuite({ ...SUITE_DEFAULTS, workloads: ['video-processing'] })).toThrow(
      /unknown workload 'video-processing'; known: dynamic-html/,
    );
  });
});
