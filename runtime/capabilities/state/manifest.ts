/** Both threads. `nuvola:state`: keys in the local tier (shared memory) and the global tier. Every import may suspend. */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { waits, type CapabilityManifest } from '../manifest.js';

const key = waits('(i32, i32) -> ()');

export default {
  module: abi.MODULE_STATE,
  imports: {
    [abi.STATE_SIZE]: waits('(i32, i32) -> (i32)'),
    [abi.STATE_READ]: waits('(i32, i32, i32, i32, i32) -> (i32)'),
    [abi.STATE_WRITE]: waits('(i32, i32, i32, i32) -> ()'),
    [abi.STATE_WRITE_AT]: waits('(i32, i32, i32, i32, i32) -> ()'),
    [abi.STATE_APPEND]: waits('(i32, i32, i32, i32) -> ()'),
    [abi.STATE_APPENDED_LOAD]: waits('(i32, i32) -> (i32)'),
    [abi.STATE_READ_ALL]: waits('(i32, i32) -> (i32)'),
    [abi.STATE_TAKE]: waits('(i32, i32) -> ()'),
    [abi.STATE_APPENDED_TAKE]: waits('(i32, i32) -> ()'),
    [abi.STATE_CLEAR_APPENDED]: key,
    [abi.STATE_PUSH]: key,
    [abi.STATE_PUSH_PARTIAL]: key,
    [abi.STATE_PULL]: key,
    [abi.STATE_DELETE]: key,
    [abi.STATE_LOCK_READ]: key,
    [abi.STATE_UNLOCK_READ]: key,
    [abi.STATE_LOCK_WRITE]: key,
    [abi.STATE_UNLOCK_WRITE]: key,
    [abi.STATE_LOCK_GLOBAL_READ]: key,
    [abi.STATE_UNLOCK_GLOBAL_READ]: key,
    [abi.STATE_LOCK_GLOBAL_WRITE]: key,
    [abi.STATE_UNLOCK_GLOBAL_WRITE]: key,
    [abi.STATE_INCREMENT_GLOBAL]: waits('(i32, i32, i64) -> (i64)'),
    [abi.STATE_COMPARE_SWAP_GLOBAL]: waits('(i32, i32, i64, i64) -> (i32)'),
  },
  guest: () => import('./guest.js'),
} satisfies CapabilityManifest;
