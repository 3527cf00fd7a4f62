// Functions that call each other (chaining) and that run together and talk (a group).
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime } from 'nuvola';

const squares = fileURLToPath(new URL('../../../guest/examples/squares.ts', import.meta.url));
const pi = fileURLToPath(new URL('../../../guest/examples/pi.ts', import.meta.url));

export async function chainAndGroupExample(print: (line: string) => void = console.log): Promise<void> {
  const rt = await createRuntime({ workers: 2, logger: () => {} });
  try {
    await rt.register('squares', await buildGuest(squares));
    const chained = await rt.invoke('squares', '10', { trace: true });
    print(
      `  ${new TextDecoder().decode(chained.output)} — ${chained.calls!.length} calls in the tree, on workers ${[...new Set(chained.calls!.map((c) => c.worker))].join(', ')}`,
    );

    await rt.register('pi', await buildGuest(pi));
    const ranks = await rt.invokeGroup('pi', 4, new Uint8Array(new Int32Array([4_000_000]).buffer));
    for (const r of ranks) print(`  ${new TextDecoder().decode(r.output)} (worker ${r.worker})`);
  } finally {
    await rt.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await chainAndGroupExample();
