import { input, output, sleep } from "nuvola";
// For cancellation: a first byte 1 loops forever, 2 sleeps for a minute, 3 sleeps 30 ms and
// then traps; anything else is echoed.
export function main(): i32 {
  const data = input();
  const mode = data.length > 0 ? data[0] : 0;
  if (mode == 1) {
    let n: i64 = 0;
    while (true) n++;
  }
  if (mode == 2) sleep(60000);
  if (mode == 3) {
    sleep(30);
    unreachable();
  }
  output(data);
  return 0;
}
