#!/usr/bin/env node
/**
 * The `nuvola` command line: `build`, `run` and `bench`. Main thread only; uses the public
 * runtime API like any embedding service would.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync, statSync, watch } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { buildGuest, createRuntime, NuvolaError, type FunctionOptions } from '../index.js';
import { BENCHES, runBench, suiteProgress } from './bench.js';
import { initApp } from './init.js';
import type { ServeCliOptions } from '../../serve/cli.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port from 0 to 65535');
  return n;
}

function optimizeLevel(value: string): number {
  if (!/^[0-3]$/.test(value)) throw new InvalidArgumentError('expected 0, 1, 2 or 3');
  return Number(value);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface BuildCliOptions {
  out?: string;
  optimizeLevel: number;
  debug: boolean;
  wasi: boolean;
  sourceMap: boolean;
  watch: boolean;
}

/** Each source with the .wasm it builds: beside it, into the folder `out`, or `out` itself for one source. */
function buildTargets(sources: string[], out: string | undefined): [string, string][] {
  const name = (source: string): string => `${basename(source, extname(source))}.wasm`;
  const intoFolder = out !== undefined && (out.endsWith('/') || (existsSync(out) && statSync(out).isDirectory()));
  if (out !== undefined && !intoFolder && sources.length > 1) {
    throw new InvalidArgumentError(
      `-o ${out} names one file but there are ${sources.length} sources; give a folder (ending in /) or leave -o out`,
    );
  }
  return sources.map((source) => [
    source,
    out === undefined ? join(dirname(source), name(source)) : intoFolder ? join(out, name(source)) : out,
  ]);
}

/**
 * Builds again the sources whose folder saw a `.ts` file change (a guest's imports usually
 * live beside it), a burst of changes once; runs until the process is stopped.
 */
async function watchSources(targets: [string, string][], buildAll: (only?: Set<string>) => Promise<boolean>): Promise<never> {
  const byFolder = new Map<string, string[]>();
  for (const [source] of targets) {
    const folder = resolve(dirname(source));
    byFolder.set(folder, [...(byFolder.get(folder) ?? []), source]);
  }
  const changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let running = Promise.resolve(true);
  for (const [folder, sources] of byFolder) {
    watch(folder, { recursive: true }, (_event, file) => {
      if (file === null || !file.endsWith('.ts')) return;
      for (const source of sources) changed.add(source);
      clearTimeout(timer);
      timer = setTimeout(() => {
        const only = new Set(changed);
        changed.clear();
        running = running.then(() => buildAll(only));
      }, 50);
    });
  }
  process.stderr.write(`watching ${[...byFolder.keys()].join(', ')} (Ctrl-C to stop)\n`);
  return new Promise<never>(() => {});
}

interface RunOptions {
  group?: number;
  input?: string;
  inputFile?: string;
  timeoutMs?: number;
  memoryLimitPages?: number;
  abi?: 'nuvola' | 'wasi' | 'component';
  arg: string[];
  env: string[];
  dir: string[];
  dirRw: string[];
}

/** `--arg`, `--env`, `--dir` and `--dir-rw` as register()'s `wasi` option. */
function wasiOptions(opts: RunOptions): NonNullable<FunctionOptions['wasi']> {
  const env: Record<string, string> = {};
  for (const pair of opts.env) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new InvalidArgumentError(`--env ${pair}: expected NAME=value`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const dir = (spec: string, writable: boolean): { host: string; guest: string; writable: boolean } => {
    const at = spec.indexOf(':');
    return at < 0 ? { host: spec, guest: spec, writable } : { host: spec.slice(0, at), guest: spec.slice(at + 1), writable };
  };
  return { args: opts.arg, env, dirs: [...opts.dir.map((d) => dir(d, false)), ...opts.dirRw.map((d) => dir(d, true))] };
}

function fail(err: unknown): never {
  if (err instanceof NuvolaError) {
    process.stderr.write(`nuvola: ${err.code}: ${err.message}\n`);
  } else {
    process.stderr.write(`nuvola: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  process.exit(2);
}

/** The package's version, from its package.json (two folders above `dist/runtime/cli`). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const program = new Command()
  .name('nuvola')
  .version(packageVersion(), '-V, --version', 'print the version of nuvola')
  .description('A stateful serverless runtime for Node.js: AssemblyScript functions on a pool of worker threads.')
  .showHelpAfterError();

program
  .command('init')
  .description('scaffold an application that embeds nuvola: a host (src/) and a guest (guests/), each with its own tsconfig')
  .argument('[dir]', 'the folder to create (default: the current one, which must be empty)', '.')
  .action((dir: string) => {
    try {
      const written = initApp(dir, packageVersion());
      process.stdout.write(`created ${written.join(', ')} in ${dir}\nnext: npm install && npm start\n`);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('build')
  .description('compile AssemblyScript guests (importing "nuvola") to .wasm modules')
  .argument('<sources...>', 'guest source files, e.g. hello.ts')
  .option('-o, --out <path>', 'the .wasm file (one source), or a folder for them (ending in / or existing); default: beside each source')
  .option('-O, --optimize-level <n>', 'optimisation level 0-3', optimizeLevel, 3)
  .option('--debug', 'keep function names for readable trap frames', false)
  .option('--wasi', 'build a WASI command with @assemblyscript/wasi-shim (top-level code is _start)', false)
  .option('--no-source-map', 'leave out the source map that makes traps name the guest file:line:col')
  .option('-w, --watch', "build again whenever a .ts file under a source's folder changes; stop with Ctrl-C", false)
  .action(async (sources: string[], opts: BuildCliOptions) => {
    try {
      const targets = buildTargets(sources, opts.out);
      const buildAll = async (only?: Set<string>): Promise<boolean> => {
        let ok = true;
        for (const [source, outFile] of targets) {
          if (only !== undefined && !only.has(source)) continue;
          try {
            const bytes = await buildGuest(source, {
              outFile,
              optimizeLevel: opts.optimizeLevel,
              debug: opts.debug,
              wasi: opts.wasi,
              sourceMap: opts.sourceMap,
            });
            process.stderr.write(`built ${outFile} (${bytes.byteLength} bytes)\n`);
          } catch (err) {
            if (!opts.watch) throw err;
            ok = false;
            process.stderr.write(`nuvola: ${err instanceof NuvolaError ? `${err.code}: ` : ''}${(err as Error).message}\n`);
          }
        }
        return ok;
      };
      await buildAll();
      if (opts.watch) await watchSources(targets, buildAll);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('run')
  .description('run a guest (SDK module, WASI command or component) once and print its output; exits with its return code')
  .argument(
    '<modules...>',
    'the .wasm module (or component, or .ts source to build first) to run, then any it chains to; each is registered under its file name',
  )
  .option('-g, --group <n>', "run it as a group of n ranks (invokeGroup) and print each rank's output in rank order", positiveInt)
  .option('-i, --input <text>', 'input passed to the guest as UTF-8')
  .option('--input-file <file>', 'file whose bytes are the input')
  .option('--timeout-ms <ms>', 'timeoutMs of the call', positiveInt)
  .option('--memory-limit-pages <pages>', 'memoryLimitPages of the function', positiveInt)
  .addOption(new Option('--abi <abi>', 'the interface the module speaks (default: detected)').choices(['nuvola', 'wasi', 'component']))
  .option('--arg <value>', 'a WASI argument (repeat for more)', collect, [])
  .option('--env <NAME=value>', 'a WASI environment variable (repeat for more)', collect, [])
  .option('--dir <host[:guest]>', 'grant a WASI guest a directory, read-only (repeat for more)', collect, [])
  .option('--dir-rw <host[:guest]>', 'grant a WASI guest a directory it may write (repeat for more)', collect, [])
  .action(async (modules: string[], opts: RunOptions) => {
    let code = 0;
    try {
      if (opts.input !== undefined && opts.inputFile !== undefined) throw new Error('pass --input or --input-file, not both');
      const names = modules.map((m) => basename(m, extname(m)));
      const twice = names.find((n, i) => names.indexOf(n) !== i);
      if (twice !== undefined) throw new Error(`two modules would both be registered as '${twice}'; rename one file`);
      const input = opts.inputFile !== undefined ? await readFile(opts.inputFile) : opts.input;
      const rt = await createRuntime({ workers: opts.group === undefined ? 1 : Math.min(opts.group, 8) });
      try {
        const fnOptions: FunctionOptions = { wasi: wasiOptions(opts) };
        if (opts.timeoutMs !== undefined) fnOptions.timeoutMs = opts.timeoutMs;
        if (opts.memoryLimitPages !== undefined) fnOptions.memoryLimitPages = opts.memoryLimitPages;
        if (opts.abi !== undefined) fnOptions.abi = opts.abi;
        for (const [i, module] of modules.entries()) {
          const wasm = extname(module) === '.ts' ? await buildGuest(module, { wasi: opts.abi === 'wasi' }) : module;
          await rt.register(names[i]!, wasm, fnOptions);
        }
        const results = opts.group === undefined ? [await rt.invoke(names[0]!, input)] : await rt.invokeGroup(names[0]!, opts.group, input);
        for (const result of results) process.stdout.write(result.output);
        code = results.find((r) => r.returnCode !== 0)?.returnCode ?? 0;
      } finally {
        await rt.close();
      }
    } catch (err) {
      fail(err);
    }
    process.exitCode = code & 0xff;
  });

program
  .command('cluster')
  .description(
    'a local cluster to try: `nuvola cluster up N` starts Redis and N host processes on loopback and runs a demo across them; the cluster secret comes from NUVOLA_CLUSTER_SECRET (default: a random one for the run)',
  )
  .addArgument(program.createArgument('<verb>', 'what to do').choices(['up']))
  .addArgument(program.createArgument('<hosts>', 'how many host processes').argParser(positiveInt))
  .option('--redis <url>', 'use this Redis instead of starting one (redis-server must be installed otherwise)')
  .addOption(new Option('--calls <n>', 'calls in the burst').argParser(positiveInt))
  .action(async (_verb: string, hosts: number, opts: { redis?: string; calls?: number }) => {
    try {
      const { clusterUp } = await import('../../cluster/up.js');
      await clusterUp(hosts, {
        ...(opts.redis !== undefined ? { redisUrl: opts.redis } : {}),
        ...(opts.calls !== undefined ? { calls: opts.calls } : {}),
      });
    } catch (err) {
      fail(err);
    }
  });

program
  .command('serve')
  .description('serve a runtime over HTTP: upload and invoke functions, /metrics, a status page at /, cron and Redis Streams triggers')
  .option('-p, --port <port>', 'TCP port (0: a free one)', (v) => portNumber(v), 8080)
  .option('--host <address>', 'address to listen on (0.0.0.0: every interface)', '127.0.0.1')
  .option('--functions <dir>', 'register every .wasm and .ts (built first) in this folder at start, under its file name')
  .option('--token <token>', 'bearer token writes need (and invokes, unless --public-invoke); default: NUVOLA_TOKEN')
  .option('--public-invoke', 'invokes need no token', false)
  .option('--tls-key <file>', 'PEM private key: serve HTTPS (with --tls-cert)')
  .option('--tls-cert <file>', 'PEM certificate chain')
  .option('--redis <url>', 'Redis for the global state tier, the cluster and the stream triggers')
  .option('--cluster <name>', 'join this cluster (needs --redis; the secret comes from NUVOLA_CLUSTER_SECRET)')
  .option('--workers <n>', 'worker threads', positiveInt)
  .option('--cron <"schedule function">', 'a cron trigger, e.g. "*/5 * * * * report" (repeat for more)', collect, [])
  .option(
    '--stream <stream=function>',
    'a Redis Streams trigger: each message on stream invokes function (repeat for more; needs --redis)',
    collect,
    [],
  )
  .option('--triggers <file>', 'a JSON file { "cron": [...], "streams": [{ "stream", "function", "group"?, "consumer"?, "replies"? }] }')
  .action(async (opts: ServeCliOptions) => {
    try {
      const { serveCommand } = await import('../../serve/cli.js');
      await serveCommand(opts);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('dev')
  .description(
    'build a guest, serve it, and on every change rebuild and swap it in without dropping calls (compile errors shown, the old version kept)',
  )
  .argument('<guest>', 'the guest source (.ts)')
  .option('-w, --watch', 'rebuild on change (the default; kept for symmetry with build --watch)', true)
  .option('-p, --port <port>', 'TCP port (0: a free one)', (v) => portNumber(v), 8080)
  .option('--host <address>', 'address to listen on', '127.0.0.1')
  .action(async (guest: string, opts: { port: number; host: string }) => {
    try {
      const { devCommand } = await import('../../serve/cli.js');
      await devCommand(guest, opts);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('bench')
  .description(`run a microbenchmark against its baseline: ${Object.keys(BENCHES).join(', ')}`)
  .addArgument(program.createArgument('<name>', 'which benchmark').choices(Object.keys(BENCHES)))
  .option('--json', 'print one JSON document instead of a table', false)
  .option('--out <file>', 'also write the JSON document to this file')
  .addOption(new Option('--runs <n>', 'measured runs after the warm-up').argParser(positiveInt))
  .option('--workload <name>', 'bench suite: run only this workload (repeat for more; default: all)', collect, [])
  .addOption(new Option('--size <size>', 'bench suite: the inputs’ size').choices(['test', 'small', 'large']).default('small'))
  .option('--cold', 'bench suite: also measure the first call after the pool scaled to zero', false)
  .action(
    async (
      name: string,
      opts: { json: boolean; out?: string; runs?: number; workload: string[]; size: 'test' | 'small' | 'large'; cold: boolean },
    ) => {
      try {
        const suiteOnly = opts.workload.length > 0 || opts.cold || opts.size !== 'small';
        if (name !== 'suite' && suiteOnly) throw new InvalidArgumentError('--workload, --size and --cold apply to `bench suite` only');
        const bar = name === 'suite' ? await suiteProgress() : undefined;
        let result: Awaited<ReturnType<typeof runBench>>;
        try {
          result = await runBench(name, opts.runs, {
            workload: opts.workload,
            size: opts.size,
            cold: opts.cold,
            ...(bar !== undefined ? { onStep: (done: number, total: number, label: string) => bar.step(done, total, label) } : {}),
          });
        } finally {
          bar?.stop();
        }
        const { attachments, ...document } = result.json;
        if (opts.out !== undefined) {
          await writeFile(opts.out, `${JSON.stringify(document, null, 2)}\n`);
          for (const [name, text] of Object.entries(attachments ?? {})) await writeFile(join(dirname(opts.out), name), text);
        }
        process.stdout.write(opts.json ? `${JSON.stringify(document, null, 2)}\n` : `${result.table}\n`);
      } catch (err) {
        fail(err);
      }
    },
  );

await program.parseAsync();
