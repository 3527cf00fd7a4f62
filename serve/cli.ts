/**
 * Main thread. `nuvola serve` and `nuvola dev`: a runtime of their own, served until SIGINT or
 * SIGTERM (then the server and the runtime close, calls in flight answered first). Loaded by
 * runtime/cli/main.ts on demand, so other commands never load fastify.
 */
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import {
  buildGuest,
  createRuntime,
  ErrorCode,
  InvalidOptionError,
  NuvolaError,
  type Runtime,
  type RuntimeOptions,
} from '../runtime/index.js';
import { serve, type NuvolaServer } from './server.js';
import type { ServeOptions } from './options.js';

/** `nuvola serve`'s flags as commander parses them. */
export interface ServeCliOptions {
  port: number;
  host: string;
  functions?: string;
  token?: string;
  publicInvoke: boolean;
  tlsKey?: string;
  tlsCert?: string;
  redis?: string;
  cluster?: string;
  workers?: number;
  cron: string[];
  stream: string[];
  triggers?: string;
}

export async function serveCommand(opts: ServeCliOptions): Promise<void> {
  const options: ServeOptions = { port: opts.port, host: opts.host, publicInvoke: opts.publicInvoke, cron: [...opts.cron], streams: [] };
  const token = opts.token ?? process.env['NUVOLA_TOKEN'];
  if (token !== undefined) options.token = token;
  if (opts.functions !== undefined) options.functions = opts.functions;
  if (opts.redis !== undefined) options.redis = opts.redis;
  if ((opts.tlsKey === undefined) !== (opts.tlsCert === undefined)) {
    throw new InvalidOptionError(ErrorCode.INVALID_OPTION, 'HTTPS needs both --tls-key and --tls-cert', {
      path: opts.tlsKey === undefined ? 'tlsKey' : 'tlsCert',
    });
  }
  if (opts.tlsKey !== undefined && opts.tlsCert !== undefined) {
    options.tls = { key: await readFile(opts.tlsKey, 'utf8'), cert: await readFile(opts.tlsCert, 'utf8') };
  }
  for (const [i, spec] of opts.stream.entries()) {
    const at = spec.indexOf('=');
    if (at <= 0) {
      throw new InvalidOptionError(ErrorCode.INVALID_TRIGGER, `--stream ${spec}: expected <stream>=<function>`, { path: `streams[${i}]` });
    }
    options.streams!.push({ stream: spec.slice(0, at), function: spec.slice(at + 1) });
  }
  if (opts.triggers !== undefined) {
    let file: { cron?: unknown; streams?: unknown };
    try {
      file = JSON.parse(await readFile(opts.triggers, 'utf8')) as typeof file;
    } catch (err) {
      throw new InvalidOptionError(ErrorCode.INVALID_TRIGGER, `--triggers ${opts.triggers}: ${(err as Error).message}`, {
        path: 'triggers',
      });
    }
    if (file === null || typeof file !== 'object' || Object.keys(file).some((k) => k !== 'cron' && k !== 'streams')) {
      throw new InvalidOptionError(ErrorCode.INVALID_TRIGGER, `--triggers ${opts.triggers}: expected { "cron": [...], "streams": [...] }`, {
        path: 'triggers',
      });
    }
    if (file.cron !== undefined) options.cron = [...options.cron!, ...(Array.isArray(file.cron) ? file.cron : [file.cron])] as string[];
    if (file.streams !== undefined)
      options.streams = [...options.streams!, ...(Array.isArray(file.streams) ? file.streams : [file.streams])];
  }
  const runtimeOptions: RuntimeOptions = {};
  if (opts.workers !== undefined) runtimeOptions.workers = opts.workers;
  if (opts.redis !== undefined) runtimeOptions.redis = opts.redis;
  if (opts.cluster !== undefined) {
    const secret = process.env['NUVOLA_CLUSTER_SECRET'];
    if (secret === undefined) {
      throw new InvalidOptionError(ErrorCode.INVALID_OPTION, '--cluster needs the cluster secret in NUVOLA_CLUSTER_SECRET', {
        path: 'cluster.secret',
      });
    }
    runtimeOptions.cluster = { name: opts.cluster, secret };
  }
  const rt = await createRuntime(runtimeOptions);
  let server: NuvolaServer;
  try {
    server = await serve(rt, options);
  } catch (err) {
    await rt.close();
    throw err;
  }
  process.stderr.write(
    `nuvola serve: listening on ${server.url} (${server.functions.names().length} functions; status page ${server.url}/)\n`,
  );
  stopOnSignal(server, rt);
}

/** `nuvola dev <guest.ts>`: serve one guest, rebuilt and swapped in on every change. */
export async function devCommand(guest: string, opts: { port: number; host: string }): Promise<void> {
  if (extname(guest) !== '.ts') {
    throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `nuvola dev takes a guest source (.ts), got ${guest}`, { path: 'guest' });
  }
  const name = basename(guest, '.ts');
  const rt = await createRuntime({ workers: 2 });
  const server = await serve(rt, { port: opts.port, host: opts.host });
  let version = 0;
  const rebuild = async (): Promise<void> => {
    const began = performance.now();
    try {
      const bytes = await buildGuest(guest, { debug: true });
      await server.publish(name, bytes, undefined, true);
      version++;
      process.stderr.write(
        `nuvola dev: ${version === 1 ? 'serving' : 'swapped in'} ${name} v${version} (${(performance.now() - began).toFixed(0)} ms): POST ${server.url}/functions/${name}/invoke\n`,
      );
    } catch (err) {
      const e = err as NuvolaError;
      const kept = version > 0 ? `; still serving v${version}` : '';
      process.stderr.write(`nuvola dev: ${e instanceof NuvolaError ? `${e.code}: ` : ''}${e.message}${kept}\n`);
    }
  };
  await rebuild();
  process.stderr.write(`nuvola dev: listening on ${server.url}, watching ${dirname(resolve(guest))}\n`);
  let timer: NodeJS.Timeout | undefined;
  let running = Promise.resolve();
  const watcher = watch(dirname(resolve(guest)), { recursive: true }, (_event, file) => {
    if (file === null || !file.endsWith('.ts')) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = running.then(rebuild);
    }, 50);
  });
  stopOnSignal(server, rt, () => watcher.close());
}

function stopOnSignal(server: NuvolaServer, rt: Runtime, also?: () => void): void {
  const stop = (): void => {
    also?.();
    void server
      .close()
      .then(() => rt.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
