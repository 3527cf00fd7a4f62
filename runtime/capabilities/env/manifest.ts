/** Both threads. `env`: AssemblyScript's own runtime imports (abort, trace, seed); nuvola's capabilities never use it. */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { fn, type CapabilityManifest } from '../manifest.js';

export default {
  module: abi.MODULE_ENV,
  imports: {
    [abi.ENV_ABORT]: fn('(i32, i32, i32, i32) -> ()'),
    [abi.ENV_TRACE]: fn('(i32, i32, f64, f64, f64, f64, f64) -> ()'),
    [abi.ENV_SEED]: fn('() -> (f64)'),
  },
  guest: () => import('./guest.js'),
} satisfies CapabilityManifest;
