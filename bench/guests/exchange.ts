import { chain, comm, inputString, sleep, state } from "nuvola";
// `nuvola bench comm` guest. Input: "<mode> <iterations> <bytes> <run>".
// pingpong: rank 0 sends <bytes> to rank 1, which sends them back, <iterations> times —
//   "direct" through comm, "redis" through the global tier (write + push, then pull until there).
// allreduce: allreduce SUM of <bytes>/8 f64 over every rank, <iterations> times — direct
//   (comm.allreduceF64) or through the global tier (each rank pushes its vector, reads the others').
// hop: <iterations> chained calls to "leaf", one after another. none: nothing.

function key(run: string, what: string, i: i32, r: i32): string {
  return "x:" + run + ":" + what + ":" + i.toString() + ":" + r.toString();
}

/** Waits until the global tier has `k` with `size` bytes, then reads it. */
function fetch(k: string, size: i32): Uint8Array {
  state.pull(k);
  while (state.size(k) != size) {
    sleep(0);
    state.pull(k);
  }
  return state.read(k);
}

export function main(): i32 {
  const args = inputString().split(" ");
  const mode = args[0];
  const iterations = I32.parseInt(args[1]);
  const bytes = I32.parseInt(args[2]);
  const run = args[3];
  const r = comm.rank();
  const n = comm.size();
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = <u8>(i * 31 + r);
  if (mode == "direct-pingpong") {
    for (let i = 0; i < iterations; i++) {
      if (r == 0) {
        comm.send(1, data);
        comm.recv(1);
      } else if (r == 1) {
        comm.send(0, comm.recv(0));
      }
    }
  } else if (mode == "redis-pingpong") {
    for (let i = 0; i < iterations; i++) {
      if (r == 0) {
        state.write(key(run, "ping", i, 0), data);
        state.push(key(run, "ping", i, 0));
        fetch(key(run, "pong", i, 1), bytes);
      } else if (r == 1) {
        const got = fetch(key(run, "ping", i, 0), bytes);
        state.write(key(run, "pong", i, 1), got);
        state.push(key(run, "pong", i, 1));
      }
    }
  } else if (mode == "direct-allreduce") {
    const values = Float64Array.wrap(data.buffer);
    for (let i = 0; i < iterations; i++) comm.allreduceF64(values, comm.Op.SUM);
  } else if (mode == "redis-allreduce") {
    for (let i = 0; i < iterations; i++) {
      state.write(key(run, "ar", i, r), data);
      state.push(key(run, "ar", i, r));
      const sum = new Float64Array(bytes >> 3);
      sum.set(Float64Array.wrap(data.buffer));
      for (let k = 0; k < n; k++) {
        if (k == r) continue;
        const other = Float64Array.wrap(fetch(key(run, "ar", i, k), bytes).buffer);
        for (let j = 0; j < sum.length; j++) sum[j] += other[j];
      }
    }
  } else if (mode == "hop") {
    for (let i = 0; i < iterations; i++) chain.wait(chain.call("leaf"));
  }
  return 0;
}
