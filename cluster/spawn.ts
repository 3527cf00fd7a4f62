/**
 * Main thread. Starts cluster hosts as child processes (`host.ts`), for `nuvola cluster up`,
 * `nuvola bench cluster` and the tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RuntimeOptions } from '../runtime/options.js';

export interface HostProcess {
  id: string;
  child: ChildProcess;
  /** What the host wrote to stderr (its log). */
  log: string[];
  /** SIGKILL: the host dies with its calls in flight. */
  kill(): Promise<void>;
  /** SIGTERM: the host leaves the cluster cleanly. */
  stop(): Promise<void>;
}

/** The environment variable a host process (and `nuvola cluster up`) takes the cluster's secret from. */
export const SECRET_ENV = 'NUVOLA_CLUSTER_SECRET';

/** The secret in {@link SECRET_ENV}: a JSON list or string as is, else the plain value; undefined when unset. */
export function secretFromEnv(): string | string[] | undefined {
  const value = process.env[SECRET_ENV];
  if (value === undefined || value === '') return undefined;
  try {
    const parsed = JSON.parse(value) as unknown;
    if (typeof parsed === 'string' || Array.isArray(parsed)) return parsed as string | string[];
  } catch {
    // a plain string
  }
  return value;
}

const HOST_SCRIPT = fileURLToPath(new URL('./host.js', import.meta.url));

/** Starts one host; resolves once it has joined its cluster. */
export function startHost(options: RuntimeOptions & { redis: unknown; cluster: { name: string } }, startMs = 20_000): Promise<HostProcess> {
  // The secret goes in the environment, not on the command line (which `ps` shows every user).
  const { secret, ...cluster } = options.cluster as { secret?: unknown };
  const child = spawn(process.execPath, [HOST_SCRIPT, JSON.stringify({ ...options, cluster })], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(secret !== undefined ? { [SECRET_ENV]: JSON.stringify(secret) } : {}) },
  });
  const log: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => log.push(...chunk.split('\n').filter((l) => l !== '')));
  const ended = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await ended;
  };
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`a cluster host did not start within ${startMs} ms: ${log.join(' | ')}`));
    }, startMs);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const match = /^ready (\S+)$/m.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ id: match[1]!, child, log, kill: () => signal('SIGKILL'), stop: () => signal('SIGTERM') });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`a cluster host exited with ${code} before it joined: ${log.join(' | ')}`));
    });
  });
}
