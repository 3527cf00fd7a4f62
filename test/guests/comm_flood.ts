import { comm, inputString, outputString, sleep } from "nuvola";
// Queue caps. "flood <count> <kib> [ms]": rank 0 sends <count> messages of <kib> KiB to rank 1,
// which never receives (it sleeps <ms> ms, if given, before it returns). "acked <rounds> <count> <kib>": each round rank 0 sends <count>
// such messages and waits for rank 1's ack, sent once it has received them all.
export function main(): i32 {
  const parts = inputString().split(" ");
  const r = comm.rank();
  if (parts[0] == "flood") {
    const count = I32.parseInt(parts[1]);
    const size = I32.parseInt(parts[2]) * 1024;
    if (r == 0) for (let i = 0; i < count; i++) comm.send(1, new Uint8Array(size));
    else if (parts.length > 3) sleep(I32.parseInt(parts[3]));
    outputString("sent " + count.toString());
  } else if (parts[0] == "acked") {
    const rounds = I32.parseInt(parts[1]);
    const count = I32.parseInt(parts[2]);
    const size = I32.parseInt(parts[3]) * 1024;
    let bytes = 0;
    for (let round = 0; round < rounds; round++) {
      if (r == 0) {
        for (let i = 0; i < count; i++) comm.send(1, new Uint8Array(size));
        comm.recv(1);
      } else {
        for (let i = 0; i < count; i++) bytes += comm.recv(0).length;
        comm.send(0, new Uint8Array(1));
      }
    }
    outputString(bytes.toString());
  }
  return 0;
}
