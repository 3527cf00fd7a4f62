/** Both threads. `nuvola:comm`: messages between the ranks of a group. */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { fn, waits, type CapabilityManifest } from '../manifest.js';

export default {
  module: abi.MODULE_COMM,
  imports: {
    [abi.COMM_RANK]: fn('() -> (i32)'),
    [abi.COMM_SIZE]: fn('() -> (i32)'),
    [abi.COMM_SEND]: fn('(i32, i32, i32) -> ()'),
    [abi.COMM_RECV]: waits('(i32) -> (i32)'),
    [abi.COMM_TAKE]: fn('(i32, i32) -> ()'),
  },
  guest: () => import('./guest.js'),
} satisfies CapabilityManifest;
