// The worker's log of unsent outcomes (runtime/outcome-log.ts), read back as the pool does.
import { describe, expect, it } from 'vitest';
import { OUTCOME_LOG_BYTES, OutcomeLog, unsentOutcomes } from '../runtime/outcome-log.js';
import type { Usage } from '../runtime/metering.js';

const usage = (wallMs: number, fuel?: number): Usage => ({
  wallMs,
  cpuMs: wallMs / 2,
  peakMemoryBytes: 65536,
  bytesIn: 3,
  bytesOut: 4,
  stateBytesRead: 5,
  stateBytesWritten: 6,
  statePushedBytes: 7,
  kernelMs: 0.5,
  gbSeconds: 1e-9,
  energyJoules: undefined,
  ...(fuel === undefined ? {} : { fuel }),
});

describe('outcome log', () => {
  it('gives back every outcome appended since it was last cleared, and none before', () => {
    const buffer = new SharedArrayBuffer(OUTCOME_LOG_BYTES);
    const log = new OutcomeLog(buffer);
    expect(log.append({ id: 1, returnCode: 0, cold: false, workerMs: 1 }, usage(1))).toBe(true);
    log.clear();
    expect(log.empty).toBe(true);
    const error = { code: 'E_GUEST_ABORT' as const, message: 'aborted', details: { line: 3 } };
    expect(log.append({ id: 2, returnCode: -7, cold: true, workerMs: 0.25, output: new Uint8Array([1, 2, 3]) }, usage(0.25, 42))).toBe(
      true,
    );
    expect(log.append({ id: -3, error })).toBe(true);
    expect([...unsentOutcomes(buffer).entries()]).toEqual([
      [2, { id: 2, returnCode: -7, cold: true, workerMs: 0.25, usage: usage(0.25, 42), output: new Uint8Array([1, 2, 3]) }],
      [-3, { id: -3, error }],
    ]);
  });

  it('refuses an outcome over its payload limit, and one it has no room left for', () => {
    const buffer = new SharedArrayBuffer(OUTCOME_LOG_BYTES);
    const log = new OutcomeLog(buffer);
    expect(log.append({ id: 1, returnCode: 0, cold: false, workerMs: 0, output: new Uint8Array(OUTCOME_LOG_BYTES / 2) }, usage(0))).toBe(
      false,
    );
    let id = 0;
    while (log.append({ id: ++id, returnCode: 0, cold: false, workerMs: 0, output: new Uint8Array(1000) }, usage(0)));
    const kept = unsentOutcomes(buffer);
    expect(kept.size).toBe(id - 1);
    expect(kept.size).toBeGreaterThan(50);
    expect(kept.has(id)).toBe(false);
  });
});
