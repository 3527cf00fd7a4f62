/** Both threads. `nuvola:io`: the call's input and output, log lines, sleep, time left. */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { fn, waits, type CapabilityManifest } from '../manifest.js';

export default {
  module: abi.MODULE_IO,
  imports: {
    [abi.IO_INPUT_SIZE]: fn('() -> (i32)'),
    [abi.IO_INPUT_READ]: fn('(i32, i32) -> (i32)'),
    [abi.IO_OUTPUT_WRITE]: fn('(i32, i32) -> ()'),
    [abi.IO_LOG]: fn('(i32, i32) -> ()'),
    [abi.IO_SLEEP]: waits('(i32) -> ()'),
    [abi.IO_REMAINING_MS]: fn('() -> (i32)'),
  },
  guest: () => import('./guest.js'),
} satisfies CapabilityManifest;
