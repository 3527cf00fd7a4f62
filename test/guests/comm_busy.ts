// Ranks busy on the CPU (review cases): "hang:1" — rank 0 wakes ranks 1 and 2 in one go,
// rank 2 then spins forever; "busy:N" — rank 1 traps after 100 ms while rank 0 computes N
// million steps before its receive; "spinsleep:N" — rank 1 traps at once while the others
// compute N million steps, then sleep.
import { comm, inputString, outputString, sleep } from "nuvola";
let acc: u64 = 0;
function spin(millions: i32): void {
  for (let m = 0; m < millions; m++) {
    for (let i = 0; i < 1000000; i++) acc = acc * 6364136223846793005 + 1442695040888963407;
  }
}
export function main(): i32 {
  const input = inputString();
  const colon = input.indexOf(":");
  const mode = colon < 0 ? input : input.substring(0, colon);
  const arg = colon < 0 ? 0 : I32.parseInt(input.substring(colon + 1));
  const r = comm.rank();
  if (mode == "hang") {
    // ranks 1 and 2 wait on rank 0, which wakes both in one go; rank 2 then spins forever
    if (r == 0) {
      if (arg == 0) sleep(50);
      comm.send(1, new Uint8Array(1));
      comm.send(2, new Uint8Array(1));
    } else if (r == 1) {
      comm.recv(0);
      sleep(10);
    } else {
      comm.recv(0);
      while (true) acc += 1;
    }
  } else if (mode == "busy") {
    // rank 1 traps after 100 ms; rank 0 computes for `arg` million iterations, then receives
    if (r == 1) {
      sleep(100);
      unreachable();
    }
    sleep(10);
    spin(arg);
    comm.recv(1);
  } else if (mode == "spin") {
    spin(arg);
  } else if (mode == "spinsleep") {
    // rank 1 traps at once; the others are on the CPU for `arg` million steps, then sleep 3 s
    if (r == 1) unreachable();
    spin(arg);
    sleep(3000);
  }
  outputString("ok " + r.toString() + " " + (acc & 1).toString());
  return 0;
}
