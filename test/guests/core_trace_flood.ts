// Traces (AssemblyScript's env.trace) 1000 lines of 1000 characters, then one of 4M characters.
export function main(): i32 {
  const line = "y".repeat(1000);
  for (let i = 0; i < 1000; i++) trace(line, 2, 1.5, 2);
  trace("z".repeat(4 << 20));
  return 0;
}
