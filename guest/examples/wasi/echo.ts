// A WASI command built with @assemblyscript/wasi-shim (`npx nuvola build --wasi echo.ts -o
// echo.wasm`): copies stdin to stdout. Under nuvola, stdin is the invocation's input and
// stdout its output.
const chunk = new ArrayBuffer(4096);
for (;;) {
  const n = process.stdin.read(chunk);
  if (n <= 0) break;
  process.stdout.write(n === chunk.byteLength ? chunk : chunk.slice(0, n));
}
