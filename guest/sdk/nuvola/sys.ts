// The host's monotonic clock and random source (import module "nuvola:sys", see abi.ts).

// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:sys", "monotonic_ns")
declare function host_monotonic_ns(): i64;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:sys", "random_bytes")
declare function host_random_bytes(ptr: usize, len: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:sys", "random_u64")
declare function host_random_u64(): i64;

/** A clock that never goes back, for measuring time within and across calls. */
export namespace clock {
  /** Nanoseconds from an arbitrary start; never less than an earlier reading on the same host, in any call. */
  export function monotonicNs(): i64 {
    return host_monotonic_ns();
  }
}

// `u64` inside `random` names its function: the type needs another name there.
type Word = u64;

/** The host's cryptographic random source. */
export namespace random {
  /** `n` random bytes. */
  export function bytes(n: i32): Uint8Array {
    const out = new Uint8Array(n);
    if (n > 0) host_random_bytes(out.dataStart, n);
    return out;
  }

  /** Fills `buffer` with random bytes. */
  export function fill(buffer: Uint8Array): void {
    if (buffer.length > 0) host_random_bytes(buffer.dataStart, buffer.length);
  }

  /** 64 random bits. */
  export function u64(): Word {
    return <Word>host_random_u64();
  }
}
