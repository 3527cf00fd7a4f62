/** Both threads. `nuvola:chain`: a guest calling other registered functions. */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { fn, waits, type CapabilityManifest } from '../manifest.js';

export default {
  module: abi.MODULE_CHAIN,
  imports: {
    [abi.CHAIN_CALL]: fn('(i32, i32, i32, i32) -> (i32)'),
    [abi.CHAIN_WAIT]: waits('(i32) -> (i32)'),
    [abi.CHAIN_OUTPUT_SIZE]: waits('(i32) -> (i32)'),
    [abi.CHAIN_OUTPUT_READ]: fn('(i32, i32, i32) -> (i32)'),
  },
  guest: () => import('./guest.js'),
} satisfies CapabilityManifest;
