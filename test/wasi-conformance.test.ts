// The public WASI preview 1 conformance suite (WebAssembly/wasi-testsuite, prebuilt, in
// ../shared/wasi-testsuite beside the repository): every test is registered as a WASI
// command with its arguments and environment, its `root` copied fresh and preopened as '/'
// read-write, and passes when its exit code and stdout match its specification. No skip list:
// nuvola refuses no capability these tests need.
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NuvolaError, type LogEntry, type Runtime } from 'nuvola';
import { runtimeWithLogs, text } from './helpers.js';

const suite = new URL('../../shared/wasi-testsuite/tests/', import.meta.url).pathname;
const folders = ['assemblyscript', 'c', 'rust'].map((lang) => ({ lang, dir: join(suite, lang, 'testsuite', 'wasm32-wasip1') }));

interface Spec {
  args: string[];
  env: Record<string, string>;
  root: string | undefined;
  exitCode: number;
  stdout: string | undefined;
}

/** A test's specification, legacy form or operations form (the suite's doc/specification.md). */
function specOf(dir: string, name: string): Spec {
  const file = join(dir, `${name}.json`);
  const json = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const spec: Spec = { args: [], env: {}, root: undefined, exitCode: 0, stdout: undefined };
  const apply = (o: Record<string, unknown>): void => {
    if (Array.isArray(o['args'])) spec.args = o['args'] as string[];
    if (o['env'] !== undefined) spec.env = o['env'] as Record<string, string>;
    if (typeof o['root'] === 'string') spec.root = o['root'];
    if (typeof o['exit_code'] === 'number') spec.exitCode = o['exit_code'];
    if (typeof o['stdout'] === 'string') spec.stdout = o['stdout'];
  };
  if (Array.isArray(json['operations'])) {
    for (const op of json['operations'] as Record<string, unknown>[]) {
      if (op['type'] === 'run') apply(op);
      else if (op['type'] === 'wait') apply(op);
      else if (op['type'] === 'read' && op['id'] === 'stdout') spec.stdout = op['payload'] as string;
    }
  } else {
    apply(json);
  }
  return spec;
}

const tests = folders.flatMap(({ lang, dir }) =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.wasm'))
        .sort()
        .map((f) => ({ lang, dir, name: f.slice(0, -'.wasm'.length) }))
    : [],
);

let rt: Runtime;
let logs: LogEntry[];
const scratch = mkdtempSync(join(tmpdir(), 'nuvola-wasi-suite-'));
beforeAll(async () => {
  ({ rt, logs } = await runtimeWithLogs({ workers: 2 }));
});
afterAll(async () => {
  await rt.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** Copies a test's root and makes the copy writable (the suite ships it read-only). */
function freshRoot(from: string, to: string): void {
  cpSync(from, to, { recursive: true, verbatimSymlinks: true });
  const walk = (p: string): void => {
    const stats = statSync(p);
    chmodSync(p, stats.isDirectory() ? 0o755 : 0o644);
    if (stats.isDirectory()) for (const name of readdirSync(p)) walk(join(p, name));
  };
  walk(to);
}

describe('wasi-testsuite (preview 1)', () => {
  it('is present at ../shared/wasi-testsuite with its 72 preview-1 tests', () => {
    expect(existsSync(suite), `the WASI test suite is missing: expected it at ${suite}`).toBe(true);
    expect(tests).toHaveLength(72);
  });

  it.each(tests.map((t) => [`${t.lang}/${t.name}`, t] as const))('%s', async (label, { dir, name }) => {
    const spec = specOf(dir, name);
    const fn = label.replace(/[^A-Za-z0-9_]/g, '_');
    const dirs: { host: string; guest: string; writable: boolean }[] = [];
    if (spec.root !== undefined) {
      const root = join(scratch, fn);
      freshRoot(join(dir, spec.root), root);
      dirs.push({ host: root, guest: '/', writable: true });
    }
    await rt.register(fn, readFileSync(join(dir, `${name}.wasm`)), {
      abi: 'wasi',
      timeoutMs: 20_000,
      wasi: { args: spec.args, env: spec.env, dirs },
    });
    try {
      let returnCode: number;
      let stdout: string;
      try {
        const out = await rt.invoke(fn, new Uint8Array(0));
        returnCode = out.returnCode;
        stdout = text(out.output);
      } catch (err) {
        const stderr = logs.filter((l) => l.function === fn).map((l) => l.message);
        const code = err instanceof NuvolaError ? err.code : ErrorCode.GUEST_TRAP;
        throw new Error(`${label} failed with ${code}: ${(err as Error).message}\nstderr:\n${stderr.join('\n')}`, { cause: err });
      }
      const stderr = logs
        .filter((l) => l.function === fn)
        .map((l) => l.message)
        .join('\n');
      expect(returnCode, `${label}: exit code (stderr: ${stderr})`).toBe(spec.exitCode);
      if (spec.stdout !== undefined) expect(stdout, `${label}: stdout`).toBe(spec.stdout);
    } finally {
      await rt.unregister(fn);
    }
  });
});
