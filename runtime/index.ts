/**
 * nuvola — a stateful serverless runtime for Node.js. The package entry: everything a user
 * imports comes from here.
 */
export { createRuntime } from './create-runtime.js';
export { Runtime } from './runtime.js';
export type {
  InvokeResult,
  InvokeInput,
  RuntimeStats,
  FunctionStats,
  ChainResult,
  HostHandler,
  HandlerContext,
  FunctionInfo,
  ClusterView,
} from './runtime.js';
export type { HostInfo, Rejected } from '../cluster/cluster.js';
export type { CallRecord } from './pool.js';
export type { Usage, CallStats, Percentiles, EnergyStats } from './metering.js';
export type { RuntimeOptions, FunctionOptions, InvokeOptions, ChainOptions, GroupOptions, LogEntry } from './options.js';
export { RUNTIME_DEFAULTS, FUNCTION_DEFAULTS } from './options.js';
export {
  ErrorCode,
  NuvolaError,
  InvalidOptionError,
  ModuleError,
  RegistryError,
  LimitError,
  GuestError,
  TimeoutError,
  CancelledError,
  WorkerLostError,
  RuntimeClosedError,
  StateError,
  HandlerError,
  SkeletonError,
  KernelError,
  ClusterError,
  ServeError,
} from './errors.js';
export type { HostState, RegionView } from './host-state.js';
export type { RedisTarget } from '../state/redis-tier.js';
export type { ErrorDetails, WireError } from './errors.js';
export { buildGuest } from './build.js';
export type { BuildOptions } from './build.js';
