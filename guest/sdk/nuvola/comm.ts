// Messaging between the ranks of a group started by invokeGroup (import module "nuvola:comm",
// see abi.ts). Point to point: send (buffered, returns at once) and recv (suspends this
// instance, never its worker). The collectives are built on them, as binomial trees
// (log2(size) rounds).

// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:comm", "rank")
declare function cm_rank(): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:comm", "size")
declare function cm_size(): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:comm", "send")
declare function cm_send(to: i32, ptr: usize, len: i32): void;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:comm", "recv")
declare function cm_recv(from: i32): i32;
// @ts-ignore: decorator (AssemblyScript's; TypeScript allows none on a declared function)
@external("nuvola:comm", "take")
declare function cm_take(ptr: usize, len: i32): void;

function asBytes(values: Float64Array): Uint8Array {
  return Uint8Array.wrap(values.buffer, values.byteOffset, values.byteLength);
}

function asF64(bytes: Uint8Array): Float64Array {
  return Float64Array.wrap(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 3);
}

// Reused by the reductions for what they receive, so that a large reduction does not allocate
// (and first-touch) a new buffer per message.
let scratch = new Uint8Array(0);

function scratchOf(bytes: i32): Uint8Array {
  if (scratch.length < bytes) scratch = new Uint8Array(bytes);
  return scratch;
}

export namespace comm {
  /** Reduction operators of `allreduceF64` and `reduceF64`. */
  export enum Op {
    SUM = 0,
    MIN = 1,
    MAX = 2,
  }

  /** This invocation's rank in its group, 0..size()-1 (0 outside a group). */
  export function rank(): i32 {
    return cm_rank();
  }

  /** How many ranks the group has (1 outside a group). */
  export function size(): i32 {
    return cm_size();
  }

  /** Sends a copy of `data` to rank `to`. Returns at once; messages from one rank to another arrive in order. */
  export function send(to: i32, data: Uint8Array): void {
    cm_send(to, data.dataStart, data.length);
  }

  /** The next message from rank `from`, waiting for it. */
  export function recv(from: i32): Uint8Array {
    const n = cm_recv(from);
    const bytes = new Uint8Array(n);
    if (n > 0) cm_take(bytes.dataStart, n);
    return bytes;
  }

  /**
   * The next message from rank `from`, copied into `into` (no allocation); returns the
   * message's size. A message longer than `into` is cut to its length.
   */
  export function recvInto(from: i32, into: Uint8Array): i32 {
    const n = cm_recv(from);
    if (n > 0) cm_take(into.dataStart, min(n, into.length));
    return n;
  }

  /** Rank `root`'s `data`, on every rank. */
  export function broadcast(root: i32, data: Uint8Array): Uint8Array {
    const n = size();
    const me = (rank() - root + n) % n;
    let value = data;
    // Receive from the parent (the rank that differs in my lowest set bit), then pass down.
    let mask = 1;
    while (mask < n) {
      if (me & mask) {
        value = recv((me - mask + root) % n);
        break;
      }
      mask <<= 1;
    }
    mask >>= 1;
    while (mask > 0) {
      if (me + mask < n) send((me + mask + root) % n, value);
      mask >>= 1;
    }
    return value;
  }

  /** Returns once every rank has called barrier. */
  export function barrier(): void {
    const n = size();
    const me = rank();
    const empty = new Uint8Array(0);
    let mask = 1;
    while (mask < n) {
      if (me & mask) {
        send(me - mask, empty);
        break;
      }
      if (me + mask < n) recv(me + mask);
      mask <<= 1;
    }
    broadcast(0, empty);
  }

  /** The element-wise reduction (SUM, MIN or MAX) of every rank's `values`, on rank `root`; other ranks get a partial result. */
  export function reduceF64(root: i32, values: Float64Array, op: Op): Float64Array {
    const n = size();
    const me = (rank() - root + n) % n;
    const acc = new Float64Array(values.length);
    acc.set(values);
    let mask = 1;
    while (mask < n) {
      if (me & mask) {
        send((me - mask + root) % n, asBytes(acc));
        break;
      }
      if (me + mask < n) {
        const buffer = scratchOf(acc.byteLength);
        if (recvInto((me + mask + root) % n, buffer) != acc.byteLength) abort("reduce: ranks passed arrays of different lengths");
        const other = asF64(buffer);
        for (let i = 0; i < acc.length; i++) {
          const a = unchecked(acc[i]);
          const b = unchecked(other[i]);
          unchecked((acc[i] = op == Op.SUM ? a + b : op == Op.MIN ? Math.min(a, b) : Math.max(a, b)));
        }
      }
      mask <<= 1;
    }
    return acc;
  }

  /** The element-wise reduction (SUM, MIN or MAX) of every rank's `values`, on every rank. */
  export function allreduceF64(values: Float64Array, op: Op): Float64Array {
    const reduced = reduceF64(0, values, op);
    // Broadcast rank 0's result into each rank's own array (the same tree as broadcast()).
    const bytes = asBytes(reduced);
    const n = size();
    const me = rank();
    let mask = 1;
    while (mask < n) {
      if (me & mask) {
        recvInto(me - mask, bytes);
        break;
      }
      mask <<= 1;
    }
    mask >>= 1;
    while (mask > 0) {
      if (me + mask < n) send(me + mask, bytes);
      mask >>= 1;
    }
    return reduced;
  }

  /** Every rank's `data`, in rank order, on rank `root` (an empty array elsewhere). */
  export function gather(root: i32, data: Uint8Array): Array<Uint8Array> {
    const out = new Array<Uint8Array>(0);
    if (rank() != root) {
      send(root, data);
      return out;
    }
    for (let r = 0; r < size(); r++) out.push(r == root ? data : recv(r));
    return out;
  }

  /** Rank `root` sends `parts[r]` to each rank r; every rank returns its part. */
  export function scatter(root: i32, parts: Array<Uint8Array>): Uint8Array {
    if (rank() != root) return recv(root);
    for (let r = 0; r < size(); r++) if (r != root) send(r, parts[r]);
    return parts[root];
  }

  /** Inclusive prefix sum over the ranks: rank r gets the element-wise sum of ranks 0..r. */
  export function scanF64(values: Float64Array): Float64Array {
    const out = new Float64Array(values.length);
    out.set(values);
    const me = rank();
    if (me > 0) {
      const before = asF64(recv(me - 1));
      for (let i = 0; i < out.length; i++) out[i] += before[i];
    }
    if (me + 1 < size()) send(me + 1, asBytes(out));
    return out;
  }
}
