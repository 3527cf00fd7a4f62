// init() never returns: register must fail with a timeout, not hang.
let spins: i64 = 0;
export function init(): void {
  while (true) spins++;
}
export function main(): i32 {
  return 0;
}
