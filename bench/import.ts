/**
 * `nuvola bench import`: what loading the package costs an application. Each sample is a fresh
 * Node.js process that times `await import(…)` of nuvola's entry and, alternating with it, of
 * piscina (the worker-pool library an embedding service would otherwise reach for), so both
 * sides see the same machine state. `require()` of nuvola is timed the same way: it must work
 * (no top-level await anywhere in the entry's graph).
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { figure, median, report, type BenchReport } from './harness.js';

export const IMPORT_DEFAULTS = { runs: 15 };

const entry = fileURLToPath(new URL('../runtime/index.js', import.meta.url));

/** Milliseconds one fresh process spends in `how` of `target` (measured inside the process). */
function sample(how: 'import' | 'require', target: string): number {
  const script =
    how === 'import'
      ? `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(target).href)}); console.log(performance.now() - t);`
      : `const t = performance.now(); require(${JSON.stringify(target)}); console.log(performance.now() - t);`;
  const out = execFileSync(process.execPath, how === 'import' ? ['--input-type=module', '-e', script] : ['-e', script], {
    encoding: 'utf8',
  });
  return Number(out.trim());
}

export async function benchImport(runs = IMPORT_DEFAULTS.runs): Promise<BenchReport> {
  const piscina = createRequire(import.meta.url).resolve('piscina');
  const times = { nuvola: [] as number[], nuvolaRequire: [] as number[], piscina: [] as number[] };
  // Warm the file system cache for both sides before counting.
  sample('import', entry);
  sample('import', piscina);
  sample('require', entry);
  for (let run = 0; run < runs; run++) {
    const order: (keyof typeof times)[] = run % 2 === 0 ? ['nuvola', 'nuvolaRequire', 'piscina'] : ['piscina', 'nuvolaRequire', 'nuvola'];
    for (const who of order)
      times[who].push(who === 'piscina' ? sample('import', piscina) : sample(who === 'nuvola' ? 'import' : 'require', entry));
  }
  const spread = (v: number[]): string => `${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)} ms`;
  return Promise.resolve(
    report(
      'import',
      runs,
      [
        figure("import('nuvola') in a fresh process", 'ms', 'lower', times.nuvola, "import('piscina')", times.piscina),
        figure("require('nuvola') in a fresh process", 'ms', 'lower', times.nuvolaRequire, "import('piscina')", times.piscina),
      ],
      [
        `one fresh process per sample, sides alternated, ${runs} samples each after one warm-up each.`,
        `medians: import nuvola ${median(times.nuvola).toFixed(1)} ms (${spread(times.nuvola)}), require nuvola ` +
          `${median(times.nuvolaRequire).toFixed(1)} ms (${spread(times.nuvolaRequire)}), piscina ${median(times.piscina).toFixed(1)} ms (${spread(times.piscina)}).`,
      ],
    ),
  );
}
