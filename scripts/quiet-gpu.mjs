// `node scripts/quiet-gpu.mjs <command> [args…]`: runs the command with its stderr filtered of
// the driver noise that Dawn (the `webgpu` package) prints while it looks for an adapter — the
// Vulkan loader's and Dawn's own "Warning: …" lines and libwayland's XDG_RUNTIME_DIR complaint.
// `npm run demo`, `npm test` and `npm run bench` run through it; NUVOLA_GPU_DEBUG=1 shows
// everything.
//
// Why a filter around the process: Dawn writes these with fprintf(stderr) from native code
// (src/dawn/common/Log.cpp), unconditionally — no toggle, environment variable or logging
// callback of dawn.node turns them off, and Node cannot redirect file descriptor 2 of one
// thread. Only lines of the known shapes are dropped; everything else passes through as is.
import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const NOISE = [
  /^error: XDG_RUNTIME_DIR is invalid or not set in the environment\.$/,
  /^Warning: max\w+ artificially reduced from \d+ to \d+ to fit /,
  /^Warning: (Vulkan |vk|loader_)/,
  /^Error: Loader Message: /,
];
// The lines that follow a dropped message: Dawn's context and source location, then a blank line.
const CONTINUATION = [/^ - While /, /^ {4}at \w+ \(.*\/dawn\/.*:\d+\)$/];

/** A line filter: feed it lines (without their newline); it returns whether to keep each. */
export function noiseFilter() {
  let inMessage = false;
  let afterFrame = false;
  return (line) => {
    if (NOISE.some((re) => re.test(line))) {
      inMessage = true;
      afterFrame = false;
      return false;
    }
    if (inMessage && CONTINUATION.some((re) => re.test(line))) {
      afterFrame = line.startsWith('    at ');
      return false;
    }
    const blankAfterFrame = inMessage && afterFrame && line === '';
    inMessage = false;
    afterFrame = false;
    return !blankAfterFrame;
  };
}

function main(argv) {
  const [command, ...args] = argv;
  if (command === undefined) {
    console.error('usage: node scripts/quiet-gpu.mjs <command> [args…]');
    process.exitCode = 2;
    return;
  }
  const debug = process.env['NUVOLA_GPU_DEBUG'] === '1';
  const child = spawn(command, args, { stdio: ['inherit', 'inherit', debug ? 'inherit' : 'pipe'] });
  if (!debug) {
    const keep = noiseFilter();
    let partial = '';
    let timer;
    const flush = () => {
      if (partial !== '') process.stderr.write(partial);
      partial = '';
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      clearTimeout(timer);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      const kept = lines.filter((line) => keep(line));
      if (kept.length > 0) process.stderr.write(kept.map((line) => line + '\n').join(''));
      // A line without its newline yet (a prompt, a progress bar) shows after a moment.
      if (partial !== '') timer = setTimeout(flush, 100);
    });
    child.stderr.on('end', () => {
      clearTimeout(timer);
      if (partial !== '' && keep(partial)) flush();
    });
  }
  const forward = (signal) => child.kill(signal);
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, forward);
  child.on('error', (err) => {
    console.error(`quiet-gpu: cannot run ${command}: ${err.message}`);
    process.exitCode = 127;
  });
  child.on('close', (code, signal) => {
    for (const s of signals) process.off(s, forward);
    // Die of the same signal, so that whoever waits on us sees it.
    if (signal !== null) process.kill(process.pid, signal);
    else process.exitCode = code ?? 1;
  });
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  main(process.argv.slice(2));
}
