/**
 * Worker and main thread. What the host provides to guests, as data: every import module, its
 * function names and whether each may suspend the guest. `register` checks modules against it
 * (module-check.ts) and each capability binds exactly these names (imports.ts): the ABI is
 * read here without loading any capability's implementation (or Node module), so the main
 * thread checks modules without loading the workers' code.
 */
import * as abi from '../../guest/sdk/nuvola/abi.js';

/** Import name → whether it may suspend the guest (then `main` runs through JSPI). */
export type ImportManifest = Readonly<Record<string, boolean>>;

export const WASI_MODULE = 'wasi_snapshot_preview1';
/** A WASI command's entry point. */
export const WASI_START = '_start';

export const IO_IMPORTS: ImportManifest = {
  [abi.IO_INPUT_SIZE]: false,
  [abi.IO_INPUT_READ]: false,
  [abi.IO_OUTPUT_WRITE]: false,
  [abi.IO_LOG]: false,
  [abi.IO_SLEEP]: true,
  [abi.IO_REMAINING_MS]: false,
};

export const STATE_IMPORTS: ImportManifest = Object.fromEntries(
  [
    abi.STATE_SIZE,
    abi.STATE_READ,
    abi.STATE_WRITE,
    abi.STATE_WRITE_AT,
    abi.STATE_APPEND,
    abi.STATE_APPENDED_LOAD,
    abi.STATE_READ_ALL,
    abi.STATE_TAKE,
    abi.STATE_APPENDED_TAKE,
    abi.STATE_CLEAR_APPENDED,
    abi.STATE_PUSH,
    abi.STATE_PUSH_PARTIAL,
    abi.STATE_PULL,
    abi.STATE_DELETE,
    abi.STATE_LOCK_READ,
    abi.STATE_UNLOCK_READ,
    abi.STATE_LOCK_WRITE,
    abi.STATE_UNLOCK_WRITE,
    abi.STATE_LOCK_GLOBAL_READ,
    abi.STATE_UNLOCK_GLOBAL_READ,
    abi.STATE_LOCK_GLOBAL_WRITE,
    abi.STATE_UNLOCK_GLOBAL_WRITE,
    abi.STATE_INCREMENT_GLOBAL,
    abi.STATE_COMPARE_SWAP_GLOBAL,
  ].map((name) => [name, true]),
);

export const CHAIN_IMPORTS: ImportManifest = {
  [abi.CHAIN_CALL]: false,
  [abi.CHAIN_WAIT]: true,
  [abi.CHAIN_OUTPUT_SIZE]: true,
  [abi.CHAIN_OUTPUT_READ]: false,
};

export const COMM_IMPORTS: ImportManifest = {
  [abi.COMM_RANK]: false,
  [abi.COMM_SIZE]: false,
  [abi.COMM_SEND]: false,
  [abi.COMM_RECV]: true,
  [abi.COMM_TAKE]: false,
};

export const KERNELS_IMPORTS: ImportManifest = {
  [abi.KERNELS_AVAILABLE]: true,
  [abi.KERNELS_MATMUL_F32]: true,
  [abi.KERNELS_SAXPY_F32]: true,
  [abi.KERNELS_ADD_F32]: true,
  [abi.KERNELS_MUL_F32]: true,
  [abi.KERNELS_SUM_F32]: true,
  [abi.KERNELS_MAX_F32]: true,
  [abi.KERNELS_SCAN_F32]: true,
  [abi.KERNELS_CONV2D_F32]: true,
  [abi.KERNELS_RUN]: true,
};

export const ENV_IMPORTS: ImportManifest = { [abi.ENV_ABORT]: false, [abi.ENV_TRACE]: false, [abi.ENV_SEED]: false };

export const WASI_IMPORTS: ImportManifest = Object.fromEntries(
  [
    'args_get',
    'args_sizes_get',
    'environ_get',
    'environ_sizes_get',
    'clock_res_get',
    'clock_time_get',
    'fd_advise',
    'fd_allocate',
    'fd_close',
    'fd_datasync',
    'fd_fdstat_get',
    'fd_fdstat_set_flags',
    'fd_fdstat_set_rights',
    'fd_filestat_get',
    'fd_filestat_set_size',
    'fd_filestat_set_times',
    'fd_pread',
    'fd_prestat_get',
    'fd_prestat_dir_name',
    'fd_pwrite',
    'fd_read',
    'fd_readdir',
    'fd_renumber',
    'fd_seek',
    'fd_sync',
    'fd_tell',
    'fd_write',
    'path_create_directory',
    'path_filestat_get',
    'path_filestat_set_times',
    'path_link',
    'path_open',
    'path_readlink',
    'path_remove_directory',
    'path_rename',
    'path_symlink',
    'path_unlink_file',
    'poll_oneoff',
    'proc_exit',
    'proc_raise',
    'sched_yield',
    'random_get',
    'sock_accept',
    'sock_recv',
    'sock_send',
    'sock_shutdown',
  ].map((name) => [name, false]),
);

const MANIFEST: Readonly<Record<string, ImportManifest>> = {
  [abi.MODULE_IO]: IO_IMPORTS,
  [abi.MODULE_STATE]: STATE_IMPORTS,
  [abi.MODULE_CHAIN]: CHAIN_IMPORTS,
  [abi.MODULE_COMM]: COMM_IMPORTS,
  [abi.MODULE_KERNELS]: KERNELS_IMPORTS,
  [abi.MODULE_ENV]: ENV_IMPORTS,
  [WASI_MODULE]: WASI_IMPORTS,
};

/** module → import name → the only kind the ABI provides for it. */
export const PROVIDED_IMPORTS: Readonly<Record<string, Readonly<Record<string, string>>>> = Object.fromEntries(
  Object.entries(MANIFEST).map(([module, names]) => [module, Object.fromEntries(Object.keys(names).map((n) => [n, 'function']))]),
);

/** `module.name` of every import that may suspend the guest. */
export const SUSPENDING_IMPORTS: ReadonlySet<string> = new Set(
  Object.entries(MANIFEST).flatMap(([module, names]) =>
    Object.entries(names)
      .filter(([, suspends]) => suspends)
      .map(([n]) => `${module}.${n}`),
  ),
);
