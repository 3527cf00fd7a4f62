/** Both threads. `nuvola:sys`: a monotonic clock and a cryptographic random source for guests. */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { fn, type CapabilityManifest } from '../manifest.js';

export default {
  module: abi.MODULE_SYS,
  imports: {
    [abi.SYS_MONOTONIC_NS]: fn('() -> (i64)'),
    [abi.SYS_RANDOM_BYTES]: fn('(i32, i32) -> ()'),
    [abi.SYS_RANDOM_U64]: fn('() -> (i64)'),
  },
  guest: () => import('./guest.js'),
} satisfies CapabilityManifest;
