// `npm run demo`: builds the example guests and runs them on the embedded runtime, printing
// what happens. Needs nothing but Node 24 (no Redis, no GPU).
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime } from 'nuvola';
import { helloExample } from './01-hello/main.js';
import { errorsExample } from './02-errors/main.js';
import { stateExample } from './03-state/main.js';
import { coldstartExample } from './04-coldstart/main.js';
import { chainAndGroupExample } from './05-chain-and-group/main.js';
import { skeletonsExample } from './06-skeletons/main.js';
import { kernelsExample } from './07-kernels/main.js';
import { wasiAndComponentsExample } from './08-wasi-and-components/main.js';

const wordcount = fileURLToPath(new URL('../../guest/examples/wordcount.ts', import.meta.url));

console.log('nuvola demo\n');
console.log('1. hello — build, register, invoke');
await helloExample();

console.log('\n2. errors — bad input gets a coded error, the runtime keeps serving');
await errorsExample();

console.log('\n3. state — 300 concurrent calls share counters; a histogram mapped into guests as a region');
await stateExample();

console.log('\n4. cold starts — init() once, a reset after every call, scale to zero');
await coldstartExample();

console.log('\n5. chaining and groups — functions that call each other, ranks that talk');
await chainAndGroupExample();

console.log('\n6. skeletons — farm, pipeline and its normal form, map-reduce, divide and conquer');
await skeletonsExample();

console.log('\n7. GPU kernels — a guest multiplies matrices on the shared device');
await kernelsExample();

console.log('\n8. guests from other toolchains — a WASI command and a WebAssembly component');
await wasiAndComponentsExample();

console.log('\n9. many calls at once — word counts of 10 000 lines on 2 workers');
const rt = await createRuntime({ workers: 2 });
try {
  await rt.register('wordcount', await buildGuest(wordcount));
  const lines = Array.from({ length: 10_000 }, (_, i) => 'the quick brown fox '.repeat((i % 5) + 1).trim());
  const start = performance.now();
  const results = await Promise.all(lines.map((line) => rt.invoke('wordcount', line)));
  const ms = performance.now() - start;
  const words = results.reduce((sum, r) => sum + (JSON.parse(new TextDecoder().decode(r.output)) as { words: number }).words, 0);
  const perWorker = [0, 1].map((w) => results.filter((r) => r.worker === w).length);
  console.log(
    `  ${results.length} calls in ${ms.toFixed(0)} ms (${Math.round(results.length / (ms / 1000))} calls/s), ${words} words counted`,
  );
  console.log(`  calls per worker: ${perWorker.join(' / ')}; stats: ${JSON.stringify(rt.stats())}`);
} finally {
  await rt.close();
}
console.log('\ndone.');
