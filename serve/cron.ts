/**
 * Main thread. Cron triggers: `"<schedule> <function>"` strings parsed and checked at start
 * (croner: 5 fields, or 6 with seconds first), then each schedule invokes its function with an
 * empty input. A run still going when the next is due is skipped, not stacked (croner's
 * `protect`); a failed run is logged and the schedule goes on.
 */
import { Cron } from 'croner';
import { ErrorCode, InvalidOptionError, type NuvolaError } from '../runtime/errors.js';

/** One cron trigger: when, and what it invokes. */
export interface CronTrigger {
  /** The schedule as written (5 fields, or 6 with seconds first). */
  schedule: string;
  function: string;
}

const NAME = /^[A-Za-z0-9_.:/-]{1,128}$/;

/** `"*\/5 * * * * report"` → `{ schedule: '*\/5 * * * *', function: 'report' }`; `E_INVALID_TRIGGER` naming `path` otherwise. */
export function parseCronTrigger(value: unknown, path: string): CronTrigger {
  const bad = (why: string): never => {
    throw new InvalidOptionError(ErrorCode.INVALID_TRIGGER, `cron trigger ${path} (${JSON.stringify(value)}): ${why}`, {
      path,
      trigger: typeof value === 'string' ? value : undefined,
    });
  };
  if (typeof value !== 'string') return bad('expected a string "<schedule> <function>", e.g. "*/5 * * * * report"');
  const parts = value.trim().split(/\s+/);
  const fn = parts.pop() ?? '';
  if (parts.length !== 5 && parts.length !== 6) {
    return bad(`expected 5 schedule fields (6 with seconds first) and a function name, got ${parts.length} fields before the name`);
  }
  if (!NAME.test(fn)) return bad(`'${fn}' is not a function name`);
  const schedule = parts.join(' ');
  try {
    new Cron(schedule, { paused: true }).stop();
  } catch (err) {
    return bad((err as Error).message);
  }
  return { schedule, function: fn };
}

/** What the cron triggers call: invoke the function (the server's invoke, traced and versioned). */
export type TriggerInvoke = (fn: string, input: Uint8Array, options: { idempotencyKey?: string }) => Promise<unknown>;

/** Starts every schedule; returns what stops them all. */
export function startCron(triggers: readonly CronTrigger[], invoke: TriggerInvoke, warn: (message: string) => void): () => void {
  const jobs = triggers.map(
    (t) =>
      new Cron(t.schedule, { protect: true }, async () => {
        try {
          await invoke(t.function, new Uint8Array(0), {});
        } catch (err) {
          const e = err as NuvolaError;
          warn(`cron '${t.schedule}' → ${t.function}: ${e.code ?? 'error'}: ${e.message}`);
        }
      }),
  );
  return () => {
    for (const job of jobs) job.stop();
  };
}
