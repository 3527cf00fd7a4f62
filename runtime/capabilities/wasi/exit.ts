/** Worker thread. How `proc_exit` ends a call: loaded with every instance, unlike the rest of WASI. */

/** Thrown by `proc_exit` through the guest's frames; the instance turns it into the return code. */
export class WasiExit {
  constructor(readonly code: number) {}
}
