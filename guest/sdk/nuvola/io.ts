// Input, output and logging (import module "nuvola:io", see guest/abi.ts).

// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:io", "input_size")
declare function input_size(): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:io", "input_read")
declare function input_read(ptr: usize, len: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:io", "output_write")
declare function output_write(ptr: usize, len: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:io", "log")
declare function host_log(ptr: usize, len: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:io", "sleep")
declare function host_sleep(ms: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:io", "remaining_ms")
declare function host_remaining_ms(): i32;

/** How long the invocation has left before its timeout, to wind down in time. */
export namespace deadline {
  /** Milliseconds left before the call's deadline (its timeoutMs from when it was made); 0 when past it. */
  export function remainingMs(): i32 {
    return host_remaining_ms();
  }
}

/** The invocation's input bytes (empty when the caller passed none). */
export function input(): Uint8Array {
  const size = input_size();
  const bytes = new Uint8Array(size);
  if (size > 0) input_read(bytes.dataStart, size);
  return bytes;
}

/** The invocation's input decoded as UTF-8. */
export function inputString(): string {
  const bytes = input();
  return String.UTF8.decodeUnsafe(bytes.dataStart, <usize>bytes.length);
}

/** Sets the invocation's output; a later call replaces it. */
export function output(data: Uint8Array): void {
  output_write(data.dataStart, data.length);
}

/** Sets the invocation's output to the UTF-8 encoding of `text`. */
export function outputString(text: string): void {
  const encoded = String.UTF8.encode(text);
  output_write(changetype<usize>(encoded), encoded.byteLength);
}

/** Writes one line to the runtime's log, tagged with the function's name. */
export function log(message: string): void {
  const encoded = String.UTF8.encode(message);
  host_log(changetype<usize>(encoded), encoded.byteLength);
}

/**
 * Suspends this invocation for `ms` milliseconds. Its worker goes on serving other instances
 * meanwhile; the time counts against the function's `timeoutMs`.
 */
export function sleep(ms: i32): void {
  host_sleep(ms);
}
