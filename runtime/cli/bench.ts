/** The benchmarks `nuvola bench <name>` knows, each returning a report with its baseline. */
import { formatTable, type BenchReport } from '../../bench/harness.js';
import { benchInvoke, INVOKE_DEFAULTS } from '../../bench/invoke.js';
import { benchState, STATE_DEFAULTS } from '../../bench/state.js';
import { benchColdstart, COLDSTART_DEFAULTS } from '../../bench/coldstart.js';
import { benchComm, COMM_DEFAULTS } from '../../bench/comm.js';
import { benchSkeletons, SKELETONS_DEFAULTS } from '../../bench/skeletons.js';
import { benchKernels, KERNELS_DEFAULTS } from '../../bench/kernels.js';
import { benchCluster, CLUSTER_DEFAULTS } from '../../bench/cluster.js';
import { benchImport, IMPORT_DEFAULTS } from '../../bench/import.js';

export const BENCHES: Record<string, (runs: number | undefined) => Promise<BenchReport>> = {
  invoke: (runs) => benchInvoke({ ...INVOKE_DEFAULTS, runs: runs ?? INVOKE_DEFAULTS.runs }),
  state: (runs) => benchState({ runs: runs ?? STATE_DEFAULTS.runs }),
  comm: (runs) => benchComm({ runs: runs ?? COMM_DEFAULTS.runs }),
  coldstart: (runs) => benchColdstart({ ...COLDSTART_DEFAULTS, runs: runs ?? COLDSTART_DEFAULTS.runs }),
  skeletons: (runs) => benchSkeletons({ ...SKELETONS_DEFAULTS, runs: runs ?? SKELETONS_DEFAULTS.runs }),
  kernels: (runs) => benchKernels({ runs: runs ?? KERNELS_DEFAULTS.runs }),
  cluster: (runs) => benchCluster({ ...CLUSTER_DEFAULTS, runs: runs ?? CLUSTER_DEFAULTS.runs }),
  import: (runs) => benchImport(runs ?? IMPORT_DEFAULTS.runs),
  // Loaded on demand: its uninstrumented baseline is built with jco's wasm-tools.
  limits: async (runs) => (await import('../../bench/limits.js')).benchLimits(runs),
  /** The old name of `limits`. */
  preempt: async (runs) => (await import('../../bench/limits.js')).benchLimits(runs),
  metering: async (runs) => (await import('../../bench/metering.js')).benchMetering(runs),
  // Loaded on demand: autocannon (its load generator) is a development dependency.
  serve: async (runs) => (await import('../../bench/serve.js')).benchServe(runs === undefined ? {} : { runs }),
  // Loaded on demand: its @wasmer/wasi baseline is a development dependency.
  wasi: async (runs) => (await import('../../bench/wasi.js')).benchWasi(runs ?? 5),
};

export async function runBench(name: string, runs: number | undefined): Promise<{ json: BenchReport; table: string }> {
  const bench = BENCHES[name];
  if (bench === undefined) throw new Error(`unknown benchmark '${name}'; known: ${Object.keys(BENCHES).join(', ')}`);
  const json = await bench(runs);
  return { json, table: formatTable(json) };
}
