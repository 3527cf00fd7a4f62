import { read, respond, start } from "../../guests/timed";
import { Csr } from "../../guests/graph";

export function main(): i32 {
  const t = start();
  const g = new Csr(read());
  const n = g.n;
  const out = new Int32Array(2 * n).fill(-1);
  const dist = out.dataStart;
  const parent = out.dataStart + (<usize>n << 2);
  const queue = new Int32Array(n);
  const q = queue.dataStart;
  let head = 0;
  let tail = 0;
  if (n > 0) {
    store<i32>(dist, 0);
    store<i32>(parent, 0);
    store<i32>(q + (<usize>(tail++) << 2), 0);
  }
  while (head < tail) {
    const v = load<i32>(q + (<usize>(head++) << 2));
    const dv = load<i32>(dist + (<usize>v << 2)) + 1;
    const end = g.end(v);
    for (let i = g.first(v); i < end; i++) {
      const u = g.neighbour(i);
      if (load<i32>(dist + (<usize>u << 2)) != -1) continue;
      store<i32>(dist + (<usize>u << 2), dv);
      store<i32>(parent + (<usize>u << 2), v);
      store<i32>(q + (<usize>(tail++) << 2), u);
    }
  }
  respond(t, Uint8Array.wrap(out.buffer));
  return 0;
}
