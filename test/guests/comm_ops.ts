import { comm, inputString, outputString, sleep, state } from "nuvola";
// Group messaging cases, chosen by the input; each rank outputs what it saw.
function f64s(a: f64, b: f64, c: f64): Float64Array {
  const v = new Float64Array(3);
  v[0] = a;
  v[1] = b;
  v[2] = c;
  return v;
}

function show(v: Float64Array): string {
  let s = "";
  for (let i = 0; i < v.length; i++) s += (i > 0 ? "," : "") + (<i64>v[i]).toString();
  return s;
}

function bytesOf(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

function text(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.length);
}

/** Rank 0 sends 1..rounds to rank 1, which answers each doubled, `pause` ms before each round. */
function pingpong(r: i32, rounds: i32, pause: i32): string {
  let s = "";
  for (let i = 1; i <= rounds; i++) {
    if (pause > 0) sleep(pause);
    if (r == 0) {
      comm.send(1, bytesOf(i.toString()));
      s += text(comm.recv(1)) + " ";
    } else if (r == 1) {
      const got = I32.parseInt(text(comm.recv(0)));
      comm.send(0, bytesOf((got * 2).toString()));
    }
  }
  return s.trim();
}

export function main(): i32 {
  const mode = inputString();
  const r = comm.rank();
  const n = comm.size();
  const rf = <f64>r;
  if (mode == "allreduce") {
    outputString(show(comm.allreduceF64(f64s(rf, 10 * rf, 100 * rf), comm.Op.SUM)));
  } else if (mode == "minmax") {
    const lo = comm.allreduceF64(f64s(rf, -rf, 7), comm.Op.MIN);
    const hi = comm.allreduceF64(f64s(rf, -rf, 7), comm.Op.MAX);
    outputString(show(lo) + "|" + show(hi));
  } else if (mode == "broadcast") {
    const data = r == 2 ? Uint8Array.wrap(new Uint8Array(4).buffer) : new Uint8Array(0);
    if (r == 2) for (let i = 0; i < 4; i++) data[i] = <u8>i;
    const got = comm.broadcast(2, data);
    let s = "";
    for (let i = 0; i < got.length; i++) s += (i > 0 ? "," : "") + got[i].toString();
    outputString(s);
  } else if (mode == "barrier") {
    const mine = new Uint8Array(1);
    mine[0] = <u8>(r + 1);
    state.write("barrier:" + r.toString(), mine);
    state.push("barrier:" + r.toString());
    comm.barrier();
    let seen = 0;
    for (let k = 0; k < n; k++) {
      state.pull("barrier:" + k.toString());
      const v = state.read("barrier:" + k.toString());
      if (v.length == 1 && v[0] == <u8>(k + 1)) seen++;
    }
    outputString("saw " + seen.toString() + " of " + n.toString());
  } else if (mode == "gather") {
    const all = comm.gather(0, bytesOf("r" + r.toString()));
    let s = "";
    for (let i = 0; i < all.length; i++) s += text(all[i]);
    outputString(s);
  } else if (mode == "scatter") {
    const parts = new Array<Uint8Array>(0);
    if (r == 1) for (let k = 0; k < n; k++) parts.push(bytesOf("part" + k.toString()));
    outputString(text(comm.scatter(1, parts)));
  } else if (mode == "scan") {
    outputString(show(comm.scanF64(f64s(1, rf, 0))));
  } else if (mode == "pingpong") {
    // Rank 0 sends 1..5 to rank 1, which answers each doubled; order is kept.
    outputString(pingpong(r, 5, 0));
  } else if (mode == "slowpong") {
    // Like pingpong, ten rounds of 150 ms each (for killing a host mid-conversation).
    outputString(pingpong(r, 10, 150));
  } else if (mode == "sendmissing") {
    comm.send(n + 3, bytesOf("x"));
  } else if (mode == "recvself") {
    comm.recv(r);
  } else if (mode == "trapone") {
    // Everyone but rank 1 waits for a message from rank 1, which traps instead of sending.
    if (r == 1) unreachable();
    comm.recv(1);
  } else if (mode == "trapslow") {
    // Rank 1 traps while the others are busy with something long (not a receive).
    if (r == 1) unreachable();
    sleep(3000);
  } else if (mode == "big") {
    if (r == 0) comm.send(1, new Uint8Array(2048));
    else comm.recv(0);
  } else if (mode == "mixed") {
    // Several collectives in a row: a receive often finds its message already there.
    const got = comm.broadcast(n - 1, bytesOf("b" + (n - 1).toString()));
    const sum = comm.allreduceF64(f64s(rf, 1, 0), comm.Op.SUM);
    const all = comm.gather(n > 1 ? 1 : 0, bytesOf(r.toString()));
    comm.barrier();
    outputString(text(got) + " " + show(sum) + " " + all.length.toString());
  } else if (mode == "solo") {
    outputString(r.toString() + "/" + n.toString());
  }
  return 0;
}
