import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { createRuntime, type LogEntry, type Runtime, type RuntimeOptions } from 'nuvola';

const built = new URL('./.build/', import.meta.url).pathname;

/** Path of a test guest built by the global setup. */
export function guestPath(name: string): string {
  return join(built, `${name}.wasm`);
}

/** Bytes of a test guest built by the global setup. */
export function guestBytes(name: string): Uint8Array {
  return readFileSync(guestPath(name));
}

export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/**
 * A guest whose `main` loops forever in code nuvola's rewrite cannot instrument (an atomic
 * load, which the dirty-block walk does not follow): its instances are replaced instead of
 * reset, and a call looping past its deadline can only be stopped with its worker.
 */
export async function uninstrumentedLoop(): Promise<Uint8Array> {
  const { parse } = await import('@bytecodealliance/jco-transpile/wasm-tools');
  return parse(`(module
    (memory (export "memory") 1 1)
    (func (export "main") (result i32) (local i32)
      (loop $spin
        (local.set 0 (i32.atomic.load (i32.const 0)))
        (br $spin))
      (i32.const 0)))`);
}

/** A runtime whose log lines are collected instead of printed. */
export async function runtimeWithLogs(options: RuntimeOptions = {}): Promise<{ rt: Runtime; logs: LogEntry[] }> {
  const logs: LogEntry[] = [];
  const rt = await createRuntime({ workers: 2, ...options, logger: (entry) => logs.push(entry) });
  return { rt, logs };
}

/**
 * For a suite: a `runtimeWithLogs` whose runtimes are closed after each test (call it at the
 * top of the file).
 */
export function closedAfterEach(): (options?: RuntimeOptions) => Promise<{ rt: Runtime; logs: LogEntry[] }> {
  const open: Runtime[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((rt) => rt.close()));
  });
  return async (options) => {
    const made = await runtimeWithLogs(options);
    open.push(made.rt);
    return made;
  };
}

/** Runs an ES module script (importing 'nuvola') in a fresh Node process from the project root. */
export function runScript(
  source: string,
  flags: string[] = [],
  timeoutMs = 20_000,
): Promise<{ stdout: string; stderr: string; code: number }> {
  const root = new URL('../', import.meta.url).pathname;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...flags, '--input-type=module', '-e', source],
      { cwd: root, timeout: timeoutMs },
      (err, stdout, stderr) => {
        resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? 1) : 0 });
      },
    );
  });
}

/** How many of this process's open files are `target`. */
export function openHere(target: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === target;
    } catch {
      return false;
    }
  }).length;
}
