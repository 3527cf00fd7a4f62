// Stateful functions: many concurrent calls on two workers count visits per page with atomic
// counters in the global tier, and the host reads the same counters. Runs on the embedded
// in-process global tier (no Redis); with `redis`, the counts stay exact across hosts.
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
      // Adding 0 reads the counter atomically from the global tier.
      print(`  host reads visits:${page} = ${await rt.state.incrementGlobal(`visits:${page}`, 0)}`);
    }
    print(`  calls per worker: ${[0, 1].map((w) => results.filter((r) => r.worker === w).length).join(' / ')}`);
  } finally {
    await rt.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await stateExample();
