// What a worker costs to start from zero — the first call after the pool scaled to zero —
// measured as the worker thread's own CPU time (robust to a loaded machine, unlike wall time)
// until it says `ready` and until it posts that first call's result, for this checkout and
// others, in alternating rounds (each a fresh process), with medians and quartiles:
//
//   node scripts/start-cost.mjs --other ../base --rounds 6 --starts 15 [--out file.json]
//
// Every checkout must be built (`npm run build`). A round: a runtime with one worker and
// idleTimeoutMs 30 registers bench/guests/coldstart.ts, then `--starts` times waits until
// the worker is parked and times one call. The load average is printed before and after.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};

if (args[0] === '--child') {
  const [, root, n] = args;
  const { createRuntime, buildGuest } = await import(pathToFileURL(join(root, 'dist/runtime/index.js')).href);
  const bytes = await buildGuest(join(root, 'bench/guests/coldstart.ts'));
  const rt = await createRuntime({ workers: 1, idleTimeoutMs: 30, logger: () => {} });
  await rt.register('coldstart', bytes);
  const wallMs = [];
  for (let i = 0; i < Number(n); i++) {
    while (rt.stats().workers !== 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    const t = performance.now();
    await rt.invoke('coldstart');
    wallMs.push(performance.now() - t);
  }
  await rt.close();
  process.stdout.write(JSON.stringify(wallMs));
  process.exit(0);
}

const here = resolve(import.meta.dirname, '..');
const roots = [here, ...args.flatMap((a, i) => (args[i - 1] === '--other' ? [resolve(a)] : []))];
const rounds = Number(arg('rounds', '6'));
const starts = arg('starts', '15');
const dir = mkdtempSync(join(tmpdir(), 'nuvola-start-cost-'));
const samples = roots.map(() => ({ ready: [], result: [], wallReady: [], call: [] }));
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const loadBefore = load();
for (let round = 0; round < rounds; round++) {
  // Alternate the order too, so no checkout always runs first.
  const order = roots.map((_, i) => i);
  if (round % 2 === 1) order.reverse();
  for (const i of order) {
    const file = join(dir, `${i}-${round}.jsonl`);
    const r = spawnSync(
      process.execPath,
      ['--import', join(here, 'scripts/start-cost-hook.mjs'), import.meta.filename, '--child', roots[i], starts],
      {
        env: { ...process.env, NUVOLA_START_COST_OUT: file },
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) throw new Error(`start-cost: ${roots[i]} exited with ${r.status}: ${r.stderr}`);
    samples[i].call.push(...JSON.parse(r.stdout));
    for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
      const m = JSON.parse(line);
      samples[i].ready.push(m.ready.cpuMs);
      samples[i].result.push(m.results.cpuMs);
      samples[i].wallReady.push(m.ready.wallMs);
    }
  }
}
const quantile = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.round(q * (sorted.length - 1))];
};
const summary = (values) => ({ median: quantile(values, 0.5), p25: quantile(values, 0.25), p75: quantile(values, 0.75), n: values.length });
const report = {
  rounds,
  startsPerRound: Number(starts),
  loadBefore,
  loadAfter: load(),
  checkouts: roots.map((root, i) => ({
    root,
    workerCpuToReadyMs: summary(samples[i].ready),
    workerCpuToFirstResultMs: summary(samples[i].result),
    workerWallToReadyMs: summary(samples[i].wallReady),
    firstCallWallMs: summary(samples[i].call),
  })),
};
const fmt = (s) => `${s.median.toFixed(1)} [${s.p25.toFixed(1)}–${s.p75.toFixed(1)}]`;
console.log(`load before ${report.loadBefore}, after ${report.loadAfter}; ${rounds} rounds × ${starts} starts each (median [p25–p75], ms)`);
console.log('| checkout | worker CPU to ready | worker CPU to first result | worker wall to ready | first call, wall |');
console.log('| --- | --- | --- | --- | --- |');
for (const c of report.checkouts) {
  console.log(
    `| ${c.root} | ${fmt(c.workerCpuToReadyMs)} | ${fmt(c.workerCpuToFirstResultMs)} | ${fmt(c.workerWallToReadyMs)} | ${fmt(c.firstCallWallMs)} |`,
  );
}
const out = arg('out', undefined);
if (out !== undefined) writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
