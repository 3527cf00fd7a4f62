/**
 * The benchmarks `nuvola bench <name>` knows, each returning a report with its baseline. Each
 * one's module is loaded only when it is asked for: some pull in development dependencies
 * (jco's wasm-tools for `limits`, @wasmer/wasi for `wasi`), and none needs the others' code.
 */
import { formatTable, type BenchReport } from '../../bench/harness.js';

/** What only `bench suite` takes: which workloads, their size, whether to measure cold starts, a progress display. */
export interface SuiteFlags {
  workload: string[];
  size: 'test' | 'small' | 'large';
  cold: boolean;
  onStep?: (done: number, total: number, label: string) => void;
}

export const SUITE_FLAG_DEFAULTS: SuiteFlags = { workload: [], size: 'small', cold: false };

export const BENCHES: Record<string, (runs: number | undefined, suite: SuiteFlags) => Promise<BenchReport>> = {
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
  // Loaded on demand: the serverless workloads (SeBS, ServerlessBench, FaaSdom) and their guests.
  suite: async (runs, flags) => {
    const { benchSuite, SUITE_DEFAULTS } = await import('../../bench/suite/run.js');
    return benchSuite({
      ...SUITE_DEFAULTS,
      runs: runs ?? SUITE_DEFAULTS.runs,
      workloads: flags.workload,
      size: flags.size,
      cold: flags.cold,
      ...(flags.onStep !== undefined ? { onStep: flags.onStep } : {}),
    });
  },
};

export async function runBench(
  name: string,
  runs: number | undefined,
  suite: SuiteFlags = SUITE_FLAG_DEFAULTS,
): Promise<{ json: BenchReport; table: string }> {
  const bench = BENCHES[name];
  if (bench === undefined) throw new Error(`unknown benchmark '${name}'; known: ${Object.keys(BENCHES).join(', ')}`);
  const json = await bench(runs, suite);
  const table = name === 'suite' ? (await import('../../bench/suite/report.js')).formatSuite(json) : formatTable(json);
  return { json, table };
}

/** The suite's progress display on stderr: a bar on a terminal, plain lines otherwise. */
export async function suiteProgress(): Promise<{ step(done: number, total: number, label: string): void; stop(): void }> {
  return (await import('../../bench/suite/progress.js')).progress();
}
