// Compares nuvola's own figures of two builds side by side: `nuvola bench <name>` of a base
// checkout and of this one, alternating (base, this, base, this …), each round a fresh process,
// on the same machine. Prints, per figure, the median of each side over the rounds, its spread
// and the ratio this/base. For "must not change" checks of a refactoring:
//
//   node scripts/bench-compare.mjs --base ../base --benches invoke,coldstart,state,comm --rounds 3
//
// Both checkouts must be built (`npm run build`). Measure only on a quiet machine (`uptime`).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const base = resolve(arg('base', '../base'));
const here = resolve(import.meta.dirname, '..');
const benches = arg('benches', 'invoke,coldstart,state,comm').split(',');
const rounds = Number(arg('rounds', '3'));
const runs = arg('runs', undefined);
const out = arg('out', undefined);
const dir = mkdtempSync(join(tmpdir(), 'nuvola-compare-'));

function once(root, bench, round) {
  const file = join(dir, `${bench}-${root === base ? 'base' : 'this'}-${round}.json`);
  const cli = join(root, 'dist/runtime/cli/main.js');
  const extra = runs === undefined ? [] : ['--runs', runs];
  const r = spawnSync(process.execPath, [cli, 'bench', bench, '--out', file, ...extra], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) {
    console.error(`bench-compare: bench ${bench} in ${root} exited with ${r.status}; that round is left out`);
    return [];
  }
  return JSON.parse(readFileSync(file, 'utf8')).figures;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const report = { base, here, rounds, load: [], benches: {} };
const lines = [];
for (const bench of benches) {
  const seen = { base: new Map(), this: new Map() };
  report.load.push({ bench, before: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') });
  for (let round = 0; round < rounds; round++) {
    // Alternate which side goes first, so a drift over the run favours neither.
    const order = round % 2 === 0 ? [base, here] : [here, base];
    for (const root of order) {
      for (const f of once(root, bench, round)) {
        const side = root === base ? seen.base : seen.this;
        if (!side.has(f.name)) side.set(f.name, { unit: f.unit, better: f.better, values: [] });
        side.get(f.name).values.push(f.median);
      }
    }
  }
  report.benches[bench] = [];
  lines.push(`\n## bench ${bench}\n`, '| figure | base (spread) | this (spread) | this/base |', '| --- | --- | --- | --- |');
  for (const [name, b] of seen.base) {
    const t = seen.this.get(name);
    if (t === undefined) continue;
    const mb = median(b.values);
    const mt = median(t.values);
    const spread = (v) => `${Math.min(...v).toPrecision(3)}–${Math.max(...v).toPrecision(3)}`;
    const ratio = mt / mb;
    report.benches[bench].push({ name, unit: b.unit, better: b.better, base: b.values, this: t.values, ratio });
    lines.push(
      `| ${name} (${b.unit}, ${b.better}) | ${mb.toPrecision(4)} (${spread(b.values)}) | ${mt.toPrecision(4)} (${spread(t.values)}) | ${ratio.toFixed(3)} |`,
    );
  }
}
console.log(lines.join('\n'));
if (out !== undefined) writeFileSync(out, JSON.stringify(report, null, 2));
