/**
 * Fuzzes the host boundary: a generated guest calls random host imports with random (mostly
 * edge) arguments; every call must end normally or with a coded error from the closed set,
 * and the runtime must stay healthy. A small budget runs in `npm test`; set
 * NUVOLA_FUZZ_CALLS (and NUVOLA_FUZZ_SEED to replay a failure) for a longer run, or use
 * `npm run fuzz`.
 */
import { describe, expect, it } from 'vitest';
import { createRuntime } from 'nuvola';
import { PROVIDED_IMPORTS } from '../runtime/capabilities/registry.js';
import { fuzz, problemWith } from './fuzz/harness.js';
import { encodeProgram, fuzzGuestModule } from './fuzz/guest-module.js';
import { IMPORTS, STALE_HINTS } from './fuzz/signatures.js';
import { guestPath } from './helpers.js';

const CALLS = Number(process.env['NUVOLA_FUZZ_CALLS'] ?? 5000);
const SEED = Number(process.env['NUVOLA_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const index = (module: string, name: string): number => IMPORTS.findIndex((i) => i.module === module && i.name === name);

describe('host boundary fuzz', () => {
  it('the generated guest imports every host function there is, and only those; every hint names one', () => {
    const provided = Object.entries(PROVIDED_IMPORTS).flatMap(([module, names]) => Object.keys(names).map((n) => `${module}.${n}`));
    expect(IMPORTS.map((i) => `${i.module}.${i.name}`).sort()).toEqual(provided.sort());
    expect(STALE_HINTS).toEqual([]);
  });

  it('the generated guest runs its program: a log line, an output, and a bad pointer that fails the call', async () => {
    const logs: string[] = [];
    const rt = await createRuntime({ workers: 1, logger: (e) => logs.push(e.message) });
    try {
      await rt.register('fuzz', fuzzGuestModule());
      const data = new TextEncoder().encode('hello');
      const log = { import: index('nuvola:io', 'log'), args: [1024, 5] };
      const output = { import: index('nuvola:io', 'output_write'), args: [1025, 4] };
      const result = await rt.invoke('fuzz', encodeProgram(IMPORTS, [log, output, { import: 999, args: [] }], data));
      expect(result.returnCode).toBe(0);
      expect(new TextDecoder().decode(result.output)).toBe('ello');
      expect(logs).toContain('hello');
      const outcome = await Promise.allSettled([
        rt.invoke('fuzz', encodeProgram(IMPORTS, [{ import: index('nuvola:io', 'log'), args: [65530, 7] }], data)),
      ]);
      expect(outcome[0]).toMatchObject({ status: 'rejected', reason: { code: 'E_GUEST_POINTER' } });
      expect(problemWith(outcome[0]!)).toBeUndefined();
    } finally {
      await rt.close();
    }
  });

  it(
    `${CALLS} random host calls end normally or with a coded error, and the runtime stays healthy (seed ${SEED})`,
    async () => {
      const report = await fuzz({
        seed: SEED,
        calls: CALLS,
        guests: ['core_echo', 'core_unreachable', 'core_abort'].map((name) => ({ name, path: guestPath(name) })),
      });
      if (process.env['NUVOLA_FUZZ_CALLS'] !== undefined) console.log(JSON.stringify({ ...report, failures: report.failures.length }));
      if (report.failures.length > 0) console.error(`fuzz seed ${SEED} (replay: NUVOLA_FUZZ_SEED=${SEED})\n${report.failures.join('\n')}`);
      expect(report.failures).toEqual([]);
      expect(report.calls).toBeGreaterThanOrEqual(CALLS);
      // The run reached past the first checks: some calls succeeded, some failed with a code.
      expect(report.codes['ok']).toBeGreaterThan(0);
      expect(report.codes['E_GUEST_POINTER']).toBeGreaterThan(0);
    },
    Math.max(60_000, CALLS * 50),
  );
});
