// Stateful functions: many concurrent calls on two workers update one shared counter per key,
// and the host reads the same state. Runs on the embedded in-process global tier (no Redis).
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime } from 'nuvola';

const source = fileURLToPath(new URL('../../../guest/examples/visits.ts', import.meta.url));

export async function stateExample(print: (line: string) => void = console.log): Promise<void> {
  const rt = await createRuntime({
    workers: 2,
    logger: (e) => (e.level === 'info' && e.function === 'nuvola' ? print(`  ${e.message}`) : undefined),
  });
  try {
    await rt.register('visits', await buildGuest(source), { stateKeys: ['visits:*'] });
    const pages = ['home', 'docs', 'home', 'blog', 'home', 'docs'];
    const calls = Array.from({ length: 300 }, (_, i) => rt.invoke('visits', pages[i % pages.length]));
    const results = await Promise.all(calls);
    print(`  last answer: "${new TextDecoder().decode(results[results.length - 1]!.output)}"`);
    for (const page of ['home', 'docs', 'blog']) {
      const value = await rt.state.read(`visits:${page}`);
      print(`  host reads visits:${page} = ${new DataView(value.buffer).getInt32(0, true)}`);
    }
    print(`  calls per worker: ${[0, 1].map((w) => results.filter((r) => r.worker === w).length).join(' / ')}`);
  } finally {
    await rt.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await stateExample();
