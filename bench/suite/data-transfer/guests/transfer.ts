import { chain, comm, output, state } from "nuvola";
import { read, respond, start } from "../../guests/timed";

// ServerlessBench's data transfer (bench/suite/data-transfer/reference.ts). Input: u32 mode,
// then the payload. 1: write the payload to a local state key and call the consumer (2), which
// reads it; 3: the same, pushed to and pulled from the global tier (4); 5: in a group of two,
// rank 0 sends the payload to rank 1, which sends the hash back. Answers the FNV-1a hash and length.
const KEY = "suite:transfer";

function digest(data: Uint8Array): Uint8Array {
  let h: u32 = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) h = (h ^ <u32>unchecked(data[i])) * 0x01000193;
  const out = new Uint8Array(8);
  store<u32>(out.dataStart, h);
  store<u32>(out.dataStart, <u32>data.length, 4);
  return out;
}

function mode(m: u32): Uint8Array {
  const b = new Uint8Array(4);
  store<u32>(b.dataStart, m);
  return b;
}

export function main(): i32 {
  const t = start();
  const input = read();
  const m = load<u32>(input.dataStart);
  if (m == 1 || m == 3) {
    state.write(KEY, input.subarray(4));
    if (m == 3) state.push(KEY);
    const id = chain.call("transfer", mode(m + 1));
    if (chain.wait(id) != 0) return 1;
    respond(t, chain.output(id));
  } else if (m == 2 || m == 4) {
    if (m == 4) state.pull(KEY);
    output(digest(state.read(KEY)));
  } else if (m == 5) {
    if (comm.rank() == 0) {
      comm.send(1, input.subarray(4));
      respond(t, comm.recv(1));
    } else {
      comm.send(0, digest(comm.recv(0)));
    }
  }
  return 0;
}
