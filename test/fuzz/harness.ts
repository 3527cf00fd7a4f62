/**
 * The fuzz loop: random programs for the generated guest, run in concurrent batches on a real
 * runtime, every outcome checked, and the runtime's health checked after every batch.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRuntime, NuvolaError, type InvokeResult, type Runtime } from 'nuvola';
import { Random, describe, randomProgram, type Targets } from './generate.js';
import { fuzzGuestModule } from './guest-module.js';
import { IMPORTS, REGION, type ArgKind, type ImportSig, type ValType } from './signatures.js';

/**
 * Codes a host import may fail a call with. Not here: E_WORKER_LOST (a host call must never
 * cost a worker), E_CLOSED, registration and option codes, and E_STATE_UNAVAILABLE (the
 * in-process tier is always there).
 */
export const ALLOWED_CODES: ReadonlySet<string> = new Set([
  'E_GUEST_TRAP',
  'E_GUEST_ABORT',
  'E_GUEST_POINTER',
  'E_CHAIN_ID',
  'E_COMM_RANK',
  'E_COMM_ABORTED',
  'E_MESSAGE_TOO_LARGE',
  'E_OUTPUT_TOO_LARGE',
  'E_TIMEOUT',
  'E_STATE_BOUNDS',
  'E_STATE_LOCK',
  'E_STATE_LEASE',
  'E_STATE_DENIED',
  'E_STATE_BAD_KEY',
  'E_STATE_MAPPED',
  'E_STATE_QUOTA',
  'E_INSTANCE_LIMIT',
  'E_KERNEL_ARGS',
  'E_KERNEL_UNKNOWN',
  'E_KERNEL_UNAVAILABLE',
]);

const REGION_TRAP = /unreachable|unaligned|out of bounds/;

/** Why an outcome is wrong, or undefined when it is one the boundary promises. */
export function problemWith(outcome: PromiseSettledResult<InvokeResult | InvokeResult[]>, regions = false): string | undefined {
  if (outcome.status === 'fulfilled') {
    const results = Array.isArray(outcome.value) ? outcome.value : [outcome.value];
    const bad = results.find((r) => r.returnCode !== 0);
    return bad === undefined ? undefined : `main returned ${bad.returnCode}, not 0`;
  }
  const err: unknown = outcome.reason;
  if (!(err instanceof NuvolaError)) return `not a NuvolaError: ${String(err)}`;
  if (!ALLOWED_CODES.has(err.code)) return `code ${err.code}: ${err.message}`;
  // The worker's classify() puts the engine's text in `details.trap` when something other than
  // a coded host error reached it: the generated guest cannot trap by itself, so that is a
  // host import throwing a plain TypeError or RangeError (a bug in the host, not the guest).
  // Region accessors are not host calls: the rewrite compiles them into checked accesses, which
  // trap like the guest's own code (an unaligned atomic; a bad read_into destination: out of
  // bounds). An access past a region's end calls the accessor's import, whose coded error has
  // no engine text.
  if (err.code === 'E_GUEST_TRAP' && err.details['trap'] !== undefined && !(regions && REGION_TRAP.test(err.message))) {
    return `uncoded host failure: ${err.message}`;
  }
  return undefined;
}

export interface FuzzReport {
  seed: number;
  calls: number;
  invocations: number;
  codes: Record<string, number>;
  /** The same, per registration the programs ran as. */
  byKind: Record<string, Record<string, number>>;
  failures: string[];
}

/** The imports with about half of them declared with random types (parameters and result). */
function mistype(r: Random): ImportSig[] {
  const kinds: ArgKind[] = ['ptr', 'len', 'int', 'i64', 'f32', 'f64'];
  const results: (ValType | undefined)[] = [undefined, 'i32', 'i64', 'f32', 'f64'];
  return IMPORTS.map((imp) =>
    r.chance(0.5) || (imp.module === 'nuvola:io' && imp.name.startsWith('input_'))
      ? imp
      : { ...imp, params: Array.from({ length: r.int(7) }, () => r.pick(kinds)), result: r.pick(results) },
  );
}

/** Picks an import: a module first (each equally likely), then one of its functions. */
function importPicker(imports: readonly ImportSig[]): (r: Random) => number {
  const byModule = new Map<string, number[]>();
  imports.forEach((imp, i) => {
    const list = byModule.get(imp.module) ?? [];
    list.push(i);
    byModule.set(imp.module, list);
  });
  const modules = [...byModule.values()];
  return (r) => r.pick(r.pick(modules));
}

const FUNCTIONS = ['core_echo', 'core_unreachable', 'core_abort', 'no_such_function', ''];
const KEYS = ['fuzz:a', 'fuzz:b', 'fuzz:big', 'other'];
const PATHS = ['a.txt', 'sub', 'sub/b.txt', '.', '..', '../escape', '/etc/passwd', 'a.txt/x', ''];

/**
 * Runs random programs until they hold `calls` host calls (a program has 1 to 8 steps; the
 * steps after one that fails its invocation do not run), `batch` invocations at a time.
 * Stops after `maxFailures` (default 20) failures.
 */
export async function fuzz(options: {
  seed: number;
  calls: number;
  guests: { name: string; path: string }[];
  batch?: number;
  maxFailures?: number;
}): Promise<FuzzReport> {
  const { seed, calls } = options;
  const batch = options.batch ?? 16;
  const maxFailures = options.maxFailures ?? 20;
  const r = new Random(seed);
  const dir = mkdtempSync(join(tmpdir(), 'nuvola-fuzz-'));
  const rt: Runtime = await createRuntime({ workers: 2, logger: () => {} });
  const report: FuzzReport = { seed, calls: 0, invocations: 0, codes: {}, byKind: {}, failures: [] };
  try {
    const wasi = { args: ['x'], env: { FUZZ: '1' }, dirs: [{ host: dir, guest: '/data', writable: true }] };
    const mistyped = mistype(r);
    // A guest catching errors uses exception handling, which the rewrite cannot follow: with
    // nuvola:region it would be refused at register, so it goes without regions.
    const catchable = IMPORTS.filter((imp) => imp.module !== REGION);
    // What each program may run as: the guest as it is, restricted to one state key, kept
    // between calls, and catching host errors. One with imports declared with the wrong types
    // never runs: register refuses it.
    const kinds: { name: string; imports: readonly ImportSig[]; weight: number }[] = [
      { name: 'fuzz', imports: IMPORTS, weight: 4 },
      { name: 'fuzz_keys', imports: IMPORTS, weight: 1 },
      { name: 'fuzz_keep', imports: IMPORTS, weight: 1 },
      { name: 'fuzz_catch', imports: catchable, weight: 2 },
    ];
    const wasm = fuzzGuestModule();
    await rt.register('fuzz', wasm, { timeoutMs: 1000, wasi });
    await rt.register('fuzz_keys', wasm, { timeoutMs: 1000, stateKeys: ['fuzz:a'], wasi });
    await rt.register('fuzz_keep', wasm, { timeoutMs: 1000, reuse: 'keep', wasi });
    await rt.register('fuzz_catch', fuzzGuestModule({ catchErrors: true, imports: catchable }), { timeoutMs: 1000, wasi });
    const refused = await rt.register('fuzz_mistyped', fuzzGuestModule({ imports: mistyped }), { timeoutMs: 1000, wasi }).then(
      () => 'registered',
      (err: unknown) => (err instanceof NuvolaError ? err.code : String(err)),
    );
    if (refused !== 'E_INVALID_MODULE')
      report.failures.push(`seed ${seed}: a guest with mistyped imports was ${refused}, not E_INVALID_MODULE`);
    for (const g of options.guests) await rt.register(g.name, g.path);
    const targets: Targets = { functions: FUNCTIONS, keys: KEYS, paths: PATHS };
    const pickers = new Map(kinds.map((k) => [k.imports, importPicker(k.imports)]));
    const weighted = kinds.flatMap((k) => Array<(typeof kinds)[number]>(k.weight).fill(k));
    let round = 0;
    while (report.calls < calls && report.failures.length < maxFailures) {
      round++;
      const group = r.chance(0.1);
      const programs = Array.from({ length: batch }, (_, i) => {
        const kind = group && i === 0 ? kinds[0]! : r.pick(weighted);
        return { kind, group: group && i === 0, ...randomProgram(r, kind.imports, targets, pickers.get(kind.imports)!) };
      });
      const outcomes = await Promise.allSettled(
        programs.map((p) =>
          answered<InvokeResult | InvokeResult[]>(p.group ? rt.invokeGroup(p.kind.name, 2, p.input) : rt.invoke(p.kind.name, p.input)),
        ),
      );
      outcomes.forEach((outcome, i) => {
        const program = programs[i]!;
        report.calls += program.steps.length;
        report.invocations++;
        const code = outcome.status === 'fulfilled' ? 'ok' : outcome.reason instanceof NuvolaError ? outcome.reason.code : 'other';
        report.codes[code] = (report.codes[code] ?? 0) + 1;
        const kind = (report.byKind[program.kind.name] ??= {});
        kind[code] = (kind[code] ?? 0) + 1;
        const problem = problemWith(
          outcome,
          program.steps.some((step) => program.kind.imports[step.import]?.module === REGION),
        );
        if (problem !== undefined)
          report.failures.push(
            `seed ${seed}, round ${round}, program ${i} (${program.kind.name}${program.group ? ', group' : ''}): ${problem}\n` +
              `  program: ${describe(program.kind.imports, program.steps)}`,
          );
      });
      const health = await healthy(rt, r);
      if (health !== undefined) report.failures.push(`seed ${seed}, after round ${round}: ${health}`);
    }
  } finally {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return report;
}

/**
 * Longest a fuzzed call may take to be answered: past its 1 s timeout, the sweeper's grace for
 * a cancel (1 s) and a kernel's maxKernelMs (10 s). Longer is a hung runtime.
 */
const ANSWER_MS = 30_000;

/** The call's outcome, or a rejection saying it was never answered. */
function answered<T>(call: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not answered within ${ANSWER_MS} ms: the runtime hung`)), ANSWER_MS);
  });
  return Promise.race([call, hung]).finally(() => clearTimeout(timer));
}

/** Undefined when the runtime still answers a known-good function correctly and has lost no worker. */
async function healthy(rt: Runtime, r: Random): Promise<string | undefined> {
  const input = Uint8Array.from({ length: 1 + r.int(32) }, () => r.int(256));
  try {
    const result = await rt.invoke('core_echo', input);
    if (result.returnCode !== input.length || result.output.join() !== [...input].reverse().join())
      return `core_echo answered wrongly: ${result.returnCode}, ${result.output.join()}`;
  } catch (err) {
    return `core_echo failed: ${String(err)}`;
  }
  const stats = rt.stats();
  if (stats.workerRestarts !== 0) return `${stats.workerRestarts} worker(s) lost`;
  return undefined;
}
