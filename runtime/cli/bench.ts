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

/** What only `bench suite` takes: which workloads, their size, whether to measure cold starts, a progress display. */
export interface SuiteFlags {
  workload: string[];
  size: 'test' | 'small' | 'large';
  cold: boolean;
  onStep?: (done: number, total: number, label: string) => void;
}

export const SUITE_FLAG_DEFAULTS: SuiteFlags = { workload: [], size: 'small', cold: false };

export const BENCHES: Record<string, (runs: number | undefined, suite: SuiteFlags) => Promise<BenchReport>> = {
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
  // Loaded on demand: its @wasmer/wasi baseline is a development dependency.
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
