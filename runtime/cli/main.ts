#!/usr/bin/env node
/**
 * The `nuvola` command line: `build`, `run` and `bench`. Main thread only; uses the public
 * runtime API like any embedding service would.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { buildGuest, createRuntime, NuvolaError, type FunctionOptions } from '../index.js';
import { BENCHES, runBench } from './bench.js';
import { initApp } from './init.js';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface RunOptions {
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
  .description('compile an AssemblyScript guest (importing "nuvola") to a .wasm module')
  .argument('<source>', 'the guest source file, e.g. hello.ts')
  .requiredOption('-o, --out <file>', 'where to write the .wasm module')
  .option('-O, --optimize-level <n>', 'optimisation level 0-3', (v) => Number(v), 3)
  .option('--debug', 'keep function names for readable trap frames', false)
  .option('--no-source-map', 'leave out the source map that makes traps name the guest file:line:col')
  .option('--wasi', 'build a WASI command with @assemblyscript/wasi-shim (top-level code is _start)', false)
  .action(async (source: string, opts: { out: string; optimizeLevel: number; debug: boolean; wasi: boolean; sourceMap: boolean }) => {
    try {
      const bytes = await buildGuest(source, {
        outFile: opts.out,
        optimizeLevel: opts.optimizeLevel,
        debug: opts.debug,
        wasi: opts.wasi,
        sourceMap: opts.sourceMap,
      });
      process.stderr.write(`built ${opts.out} (${bytes.byteLength} bytes)\n`);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('run')
  .description('run a guest (SDK module, WASI command or component) once and print its output; exits with its return code')
  .argument('<module>', 'a .wasm module or component, or a .ts guest source to build first')
  .option('-i, --input <text>', 'input passed to the guest as UTF-8')
  .option('--input-file <file>', 'file whose bytes are the input')
  .option('--timeout-ms <ms>', 'timeoutMs of the call', positiveInt)
  .option('--memory-limit-pages <pages>', 'memoryLimitPages of the function', positiveInt)
  .addOption(new Option('--abi <abi>', 'the interface the module speaks (default: detected)').choices(['nuvola', 'wasi', 'component']))
  .option('--arg <value>', 'a WASI argument (repeat for more)', collect, [])
  .option('--env <NAME=value>', 'a WASI environment variable (repeat for more)', collect, [])
  .option('--dir <host[:guest]>', 'grant a WASI guest a directory, read-only (repeat for more)', collect, [])
  .option('--dir-rw <host[:guest]>', 'grant a WASI guest a directory it may write (repeat for more)', collect, [])
  .action(async (module: string, opts: RunOptions) => {
    let code = 0;
    try {
      if (opts.input !== undefined && opts.inputFile !== undefined) throw new Error('pass --input or --input-file, not both');
      const wasm = extname(module) === '.ts' ? await buildGuest(module, { wasi: opts.abi === 'wasi' }) : module;
      const input = opts.inputFile !== undefined ? await readFile(opts.inputFile) : opts.input;
      const rt = await createRuntime({ workers: 1 });
      try {
        const fnOptions: FunctionOptions = { wasi: wasiOptions(opts) };
        if (opts.timeoutMs !== undefined) fnOptions.timeoutMs = opts.timeoutMs;
        if (opts.memoryLimitPages !== undefined) fnOptions.memoryLimitPages = opts.memoryLimitPages;
        if (opts.abi !== undefined) fnOptions.abi = opts.abi;
        await rt.register('main', wasm, fnOptions);
        const result = await rt.invoke('main', input);
        process.stdout.write(result.output);
        code = result.returnCode;
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
  .description('a local cluster to try: `nuvola cluster up N` starts Redis and N host processes on loopback and runs a demo across them')
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
  .command('bench')
  .description(`run a microbenchmark against its baseline: ${Object.keys(BENCHES).join(', ')}`)
  .addArgument(program.createArgument('<name>', 'which benchmark').choices(Object.keys(BENCHES)))
  .option('--json', 'print one JSON document instead of a table', false)
  .option('--out <file>', 'also write the JSON document to this file')
  .addOption(new Option('--runs <n>', 'measured runs after the warm-up').argParser(positiveInt))
  .action(async (name: string, opts: { json: boolean; out?: string; runs?: number }) => {
    try {
      const { json, table } = await runBench(name, opts.runs);
      const { attachments, ...document } = json;
      if (opts.out !== undefined) {
        await writeFile(opts.out, `${JSON.stringify(document, null, 2)}\n`);
        for (const [name, text] of Object.entries(attachments ?? {})) await writeFile(join(dirname(opts.out), name), text);
      }
      process.stdout.write(opts.json ? `${JSON.stringify(document, null, 2)}\n` : `${table}\n`);
    } catch (err) {
      fail(err);
    }
  });

await program.parseAsync();
