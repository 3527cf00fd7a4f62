// Chaining (import module "nuvola:chain", see abi.ts): call other registered functions and
// wait for them. A waiting caller suspends; its worker goes on serving other instances.

// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:chain", "call")
declare function ch_call(name: usize, nameLen: i32, input: usize, inputLen: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:chain", "wait")
declare function ch_wait(id: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:chain", "output_size")
declare function ch_output_size(id: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:chain", "output_read")
declare function ch_output_read(id: i32, ptr: usize, len: i32): i32;

/** The chaining API: static methods only. */
export abstract class chain {
  /** What `wait` returns for a call that trapped, timed out or could not start; `output` then holds the error. */
  static readonly FAILED: i32 = -2147483648;

  /** Starts `name` with `input` and returns the call's id at once. */
  static call(name: string, input: Uint8Array = new Uint8Array(0)): u32 {
    const n = String.UTF8.encode(name);
    return <u32>ch_call(changetype<usize>(n), n.byteLength, input.dataStart, input.length);
  }

  /** Waits for call `id`: its return code, or `chain.FAILED`. */
  static wait(id: u32): i32 {
    return ch_wait(<i32>id);
  }

  /** The output of call `id` (waits for it): what it wrote, or "E_CODE: message" if it failed. */
  static output(id: u32): Uint8Array {
    const size = ch_output_size(<i32>id);
    const bytes = new Uint8Array(size);
    if (size > 0) ch_output_read(<i32>id, bytes.dataStart, size);
    return bytes;
  }

  /** `output(id)` decoded as UTF-8. */
  static outputString(id: u32): string {
    const bytes = chain.output(id);
    return String.UTF8.decodeUnsafe(bytes.dataStart, <usize>bytes.length);
  }
}
