/**
 * Every host import with its real Wasm signature — both taken from the capabilities' manifests
 * (runtime/capabilities/registry.ts), so a new import is fuzzed as soon as it exists — and what
 * kind of value each parameter is, so the fuzzer can pick arguments that mean something (a
 * pointer and its length, a rank, a file descriptor) as well as edge values. The kinds are
 * hints ({@link HINTS}); an import without one gets the plain kind of each parameter's type.
 */
import { CAPABILITIES } from '../../runtime/capabilities/registry.js';
/** A Wasm value type of a parameter or result. */
export type ValType = 'i32' | 'i64' | 'f32' | 'f64';

/**
 * What a parameter means. `ptr` followed by `len` is a (pointer, length) pair in guest memory;
 * `ptr` alone points at something the host writes (an out-parameter) or reads with a length it
 * knows; `key`/`name` pairs are a pointer and length of text; `count` a number of elements
 * (floats, iovecs); `id` a small handle (chain id, fd, rank); `ms` a sleep; `int` anything.
 */
export type ArgKind = 'ptr' | 'len' | 'key' | 'name' | 'count' | 'id' | 'ms' | 'int' | 'i64' | 'f32' | 'f64';

export interface ImportSig {
  module: string;
  name: string;
  params: ArgKind[];
  result: ValType | undefined;
}

/** The Wasm type of a parameter kind. */
export function valType(kind: ArgKind): ValType {
  return kind === 'i64' ? 'i64' : kind === 'f32' ? 'f32' : kind === 'f64' ? 'f64' : 'i32';
}

const sig = (module: string, name: string, params: ArgKind[], result?: ValType): ImportSig => ({ module, name, params, result });

const IO = 'nuvola:io';
const STATE = 'nuvola:state';
const CHAIN = 'nuvola:chain';
const COMM = 'nuvola:comm';
const KERNELS = 'nuvola:kernels';
const SYS = 'nuvola:sys';
export const REGION = 'nuvola:region';
const ENV = 'env';
const WASI = 'wasi_snapshot_preview1';

const stateKeyOnly = [
  'clear_appended',
  'push',
  'push_partial',
  'pull',
  'delete',
  'lock_read',
  'unlock_read',
  'lock_write',
  'unlock_write',
  'lock_global_read',
  'unlock_global_read',
  'lock_global_write',
  'unlock_global_write',
];

/** wasi_snapshot_preview1: every function returns an errno (i32) except proc_exit. */
const wasi: [string, ArgKind[]][] = [
  ['args_get', ['ptr', 'ptr']],
  ['args_sizes_get', ['ptr', 'ptr']],
  ['environ_get', ['ptr', 'ptr']],
  ['environ_sizes_get', ['ptr', 'ptr']],
  ['clock_res_get', ['id', 'ptr']],
  ['clock_time_get', ['id', 'i64', 'ptr']],
  ['fd_advise', ['id', 'i64', 'i64', 'int']],
  ['fd_allocate', ['id', 'i64', 'i64']],
  ['fd_close', ['id']],
  ['fd_datasync', ['id']],
  ['fd_fdstat_get', ['id', 'ptr']],
  ['fd_fdstat_set_flags', ['id', 'int']],
  ['fd_fdstat_set_rights', ['id', 'i64', 'i64']],
  ['fd_filestat_get', ['id', 'ptr']],
  ['fd_filestat_set_size', ['id', 'i64']],
  ['fd_filestat_set_times', ['id', 'i64', 'i64', 'int']],
  ['fd_pread', ['id', 'ptr', 'count', 'i64', 'ptr']],
  ['fd_prestat_get', ['id', 'ptr']],
  ['fd_prestat_dir_name', ['id', 'ptr', 'len']],
  ['fd_pwrite', ['id', 'ptr', 'count', 'i64', 'ptr']],
  ['fd_read', ['id', 'ptr', 'count', 'ptr']],
  ['fd_readdir', ['id', 'ptr', 'len', 'i64', 'ptr']],
  ['fd_renumber', ['id', 'id']],
  ['fd_seek', ['id', 'i64', 'int', 'ptr']],
  ['fd_sync', ['id']],
  ['fd_tell', ['id', 'ptr']],
  ['fd_write', ['id', 'ptr', 'count', 'ptr']],
  ['path_create_directory', ['id', 'name', 'len']],
  ['path_filestat_get', ['id', 'int', 'name', 'len', 'ptr']],
  ['path_filestat_set_times', ['id', 'int', 'name', 'len', 'i64', 'i64', 'int']],
  ['path_link', ['id', 'int', 'name', 'len', 'id', 'name', 'len']],
  ['path_open', ['id', 'int', 'name', 'len', 'int', 'i64', 'i64', 'int', 'ptr']],
  ['path_readlink', ['id', 'name', 'len', 'ptr', 'len', 'ptr']],
  ['path_remove_directory', ['id', 'name', 'len']],
  ['path_rename', ['id', 'name', 'len', 'id', 'name', 'len']],
  ['path_symlink', ['name', 'len', 'id', 'name', 'len']],
  ['path_unlink_file', ['id', 'name', 'len']],
  ['poll_oneoff', ['ptr', 'ptr', 'count', 'ptr']],
  ['proc_raise', ['int']],
  ['sched_yield', []],
  ['random_get', ['ptr', 'len']],
  ['sock_accept', ['id', 'int', 'ptr']],
  ['sock_recv', ['id', 'ptr', 'count', 'int', 'ptr', 'ptr']],
  ['sock_send', ['id', 'ptr', 'count', 'int', 'ptr']],
  ['sock_shutdown', ['id', 'int']],
];

/** What the parameters of the imports there were when this was written mean (their types and results must agree with the manifests). */
const HINTED: readonly ImportSig[] = [
  sig(IO, 'input_size', [], 'i32'),
  sig(IO, 'input_read', ['ptr', 'len'], 'i32'),
  sig(IO, 'output_write', ['ptr', 'len']),
  sig(IO, 'log', ['ptr', 'len']),
  sig(IO, 'sleep', ['ms']),
  sig(IO, 'remaining_ms', [], 'i32'),

  sig(STATE, 'size', ['key', 'len'], 'i32'),
  sig(STATE, 'read', ['key', 'len', 'int', 'ptr', 'len'], 'i32'),
  sig(STATE, 'read_all', ['key', 'len'], 'i32'),
  sig(STATE, 'take', ['ptr', 'len']),
  sig(STATE, 'appended_take', ['ptr', 'len']),
  sig(STATE, 'write', ['key', 'len', 'ptr', 'len']),
  sig(STATE, 'write_at', ['key', 'len', 'int', 'ptr', 'len']),
  sig(STATE, 'append', ['key', 'len', 'ptr', 'len']),
  sig(STATE, 'appended_load', ['key', 'len'], 'i32'),
  sig(STATE, 'increment_global', ['key', 'len', 'i64'], 'i64'),
  sig(STATE, 'compare_swap_global', ['key', 'len', 'i64', 'i64'], 'i32'),
  ...stateKeyOnly.map((n) => sig(STATE, n, ['key', 'len'])),

  sig(CHAIN, 'call', ['name', 'len', 'ptr', 'len'], 'i32'),
  sig(CHAIN, 'wait', ['id'], 'i32'),
  sig(CHAIN, 'output_size', ['id'], 'i32'),
  sig(CHAIN, 'output_read', ['id', 'ptr', 'len'], 'i32'),

  sig(COMM, 'rank', [], 'i32'),
  sig(COMM, 'size', [], 'i32'),
  sig(COMM, 'send', ['id', 'ptr', 'len']),
  sig(COMM, 'recv', ['id'], 'i32'),
  sig(COMM, 'take', ['ptr', 'len']),

  sig(KERNELS, 'available', [], 'i32'),
  sig(KERNELS, 'matmul_f32', ['ptr', 'ptr', 'count', 'count', 'count', 'ptr']),
  sig(KERNELS, 'saxpy_f32', ['f32', 'ptr', 'ptr', 'count', 'ptr']),
  sig(KERNELS, 'add_f32', ['ptr', 'ptr', 'count', 'ptr']),
  sig(KERNELS, 'mul_f32', ['ptr', 'ptr', 'count', 'ptr']),
  sig(KERNELS, 'sum_f32', ['ptr', 'count'], 'f32'),
  sig(KERNELS, 'max_f32', ['ptr', 'count'], 'f32'),
  sig(KERNELS, 'scan_f32', ['ptr', 'count', 'ptr']),
  sig(KERNELS, 'conv2d_f32', ['ptr', 'count', 'count', 'ptr', 'count', 'count', 'ptr']),
  sig(KERNELS, 'run', ['name', 'len', 'ptr', 'len', 'ptr', 'count', 'count', 'count', 'count', 'ptr', 'count']),

  sig(SYS, 'monotonic_ns', [], 'i64'),
  sig(SYS, 'random_bytes', ['ptr', 'len']),
  sig(SYS, 'random_u64', [], 'i64'),

  sig(ENV, 'abort', ['ptr', 'ptr', 'int', 'int']),
  sig(ENV, 'trace', ['ptr', 'int', 'f64', 'f64', 'f64', 'f64', 'f64']),
  sig(ENV, 'seed', [], 'f64'),

  ...wasi.map(([name, params]) => sig(WASI, name, params, 'i32')),
  sig(WASI, 'proc_exit', ['int']),

  // Last, so that the imports without them (a guest that catches errors) keep the same indices.
  sig(REGION, 'map', ['key', 'len', 'int'], 'i32'),
  sig(REGION, 'grow', ['id', 'int']),
  sig(REGION, 'size', ['id'], 'i32'),
  sig(REGION, 'get_f64', ['id', 'int'], 'f64'),
  sig(REGION, 'set_f64', ['id', 'int', 'f64']),
  sig(REGION, 'get_f32', ['id', 'int'], 'f32'),
  sig(REGION, 'set_f32', ['id', 'int', 'f32']),
  sig(REGION, 'get_i32', ['id', 'int'], 'i32'),
  sig(REGION, 'set_i32', ['id', 'int', 'int']),
  sig(REGION, 'get_u8', ['id', 'int'], 'i32'),
  sig(REGION, 'set_u8', ['id', 'int', 'int']),
  sig(REGION, 'read_into', ['id', 'int', 'ptr', 'len']),
  sig(REGION, 'write_from', ['id', 'int', 'ptr', 'len']),
  sig(REGION, 'atomic_add_i32', ['id', 'int', 'int'], 'i32'),
  sig(REGION, 'compare_exchange_i32', ['id', 'int', 'int', 'int'], 'i32'),
];

const HINTS = new Map(HINTED.map((h) => [`${h.module}.${h.name}`, h]));

/** `(i32, i64) -> (i32)` as the manifests write it. */
function parseSignature(signature: string): { params: ValType[]; result: ValType | undefined } {
  const m = /^\((.*)\) -> \((.*)\)$/.exec(signature);
  if (m === null) throw new Error(`fuzz: cannot read the signature '${signature}'`);
  const list = (text: string): ValType[] => (text === '' ? [] : (text.split(', ') as ValType[]));
  const results = list(m[2]!);
  if (results.length > 1) throw new Error(`fuzz: '${signature}' has more than one result`);
  return { params: list(m[1]!), result: results[0] };
}

/** The plain kind of a parameter of type `type`. */
const plainKind = (type: ValType): ArgKind => (type === 'i32' ? 'int' : type);

/** Every import the host provides, in registry order, with the kinds of its parameters. */
export const IMPORTS: readonly ImportSig[] = CAPABILITIES.flatMap((c) =>
  Object.entries(c.imports).map(([name, spec]): ImportSig => {
    const { params, result } = parseSignature(spec.signature);
    const hint = HINTS.get(`${c.module}.${name}`);
    if (hint === undefined) return { module: c.module, name, params: params.map(plainKind), result };
    const hinted = `(${hint.params.map(valType).join(', ')}) -> (${hint.result ?? ''})`;
    if (hinted !== spec.signature) throw new Error(`fuzz: the hint for ${c.module}.${name} says ${hinted}, its manifest ${spec.signature}`);
    return hint;
  }),
);

/** Hints naming no import there is (a renamed or removed one): fuzz-boundary.test.ts wants none. */
export const STALE_HINTS: readonly string[] = [...HINTS.keys()].filter((key) => !IMPORTS.some((i) => `${i.module}.${i.name}` === key));
