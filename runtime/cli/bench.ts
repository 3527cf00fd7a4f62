/**
 * The benchmarks `nuvola bench <name>` knows, each returning a report with its baseline. Each
 * one's module is loaded only when it is asked for: some pull in development dependencies
 * (jco's wasm-tools for `limits`, @wasmer/wasi for `wasi`), and none needs the others' code.
 */
import { formatTable, type BenchReport } from '../../bench/harness.js';

export const BENCHES: Record<string, (runs: number | undefined) => Promise<BenchReport>> = {
  invoke: async (runs) => {
    const { benchInvoke, INVOKE_DEFAULTS } = await import('../../bench/invoke.js');
    return benchInvoke({ ...INVOKE_DEFAULTS, runs: runs ?? INVOKE_DEFAULTS.runs });
  },
  state: async (runs) => {
    const { benchState, STATE_DEFAULTS } = await import('../../bench/state.js');
    return benchState({ runs: runs ?? STATE_DEFAULTS.runs });
  },
  comm: async (runs) => {
    const { benchComm, COMM_DEFAULTS } = await import('../../bench/comm.js');
    return benchComm({ runs: runs ?? COMM_DEFAULTS.runs });
  },
  coldstart: async (runs) => {
    const { benchColdstart, COLDSTART_DEFAULTS } = await import('../../bench/coldstart.js');
    return benchColdstart({ ...COLDSTART_DEFAULTS, runs: runs ?? COLDSTART_DEFAULTS.runs });
  },
  skeletons: async (runs) => {
    const { benchSkeletons, SKELETONS_DEFAULTS } = await import('../../bench/skeletons.js');
    return benchSkeletons({ ...SKELETONS_DEFAULTS, runs: runs ?? SKELETONS_DEFAULTS.runs });
  },
  kernels: async (runs) => {
    const { benchKernels, KERNELS_DEFAULTS } = await import('../../bench/kernels.js');
    return benchKernels({ runs: runs ?? KERNELS_DEFAULTS.runs });
  },
  cluster: async (runs) => {
    const { benchCluster, CLUSTER_DEFAULTS } = await import('../../bench/cluster.js');
    return benchCluster({ ...CLUSTER_DEFAULTS, runs: runs ?? CLUSTER_DEFAULTS.runs });
  },
  import: async (runs) => {
    const { benchImport, IMPORT_DEFAULTS } = await import('../../bench/import.js');
    return benchImport(runs ?? IMPORT_DEFAULTS.runs);
  },
  limits: async (runs) => (await import('../../bench/limits.js')).benchLimits(runs),
  /** The old name of `limits`. */
  preempt: async (runs) => (await import('../../bench/limits.js')).benchLimits(runs),
  metering: async (runs) => (await import('../../bench/metering.js')).benchMetering(runs),
  serve: async (runs) => (await import('../../bench/serve.js')).benchServe(runs === undefined ? {} : { runs }),
  wasi: async (runs) => (await import('../../bench/wasi.js')).benchWasi(runs ?? 5),
};

export async function runBench(name: string, runs: number | undefined): Promise<{ json: BenchReport; table: string }> {
  const bench = BENCHES[name];
  if (bench === undefined) throw new Error(`unknown benchmark '${name}'; known: ${Object.keys(BENCHES).join(', ')}`);
  const json = await bench(runs);
  return { json, table: formatTable(json) };
}
