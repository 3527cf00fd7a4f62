// Stateful functions: many concurrent calls on two workers count visits per page with atomic
// counters in the global tier, and the host reads the same counters. Runs on the embedded
// in-process global tier (no Redis); with `redis`, the counts stay exact across hosts. Then a
// shared memory region: calls on both workers add into one byte histogram mapped in place, and
// the host reads it through a zero-copy view.
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime } from 'nuvola';

const source = fileURLToPath(new URL('../../../guest/examples/visits.ts', import.meta.url));
const histogram = fileURLToPath(new URL('../../../guest/examples/histogram.ts', import.meta.url));

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

    // A region: every call maps 'hist:bytes' and adds its input's bytes into it in place.
    await rt.register('histogram', await buildGuest(histogram), { stateKeys: ['hist:*'] });
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i}: the quick brown fox`);
    const counted = await Promise.all(lines.map((line) => rt.invoke('histogram', line)));
    const sent = lines.reduce((n, line) => n + new TextEncoder().encode(line).length, 0);
    const view = await rt.state.view('hist:bytes');
    try {
      const hist = new Int32Array(view.bytes.buffer, view.bytes.byteOffset, 256);
      const total = hist.reduce((a, b) => a + b, 0);
      const top = [...hist.keys()].sort((a, b) => hist[b]! - hist[a]!).slice(0, 3);
      print(
        `  region hist:bytes: ${total} bytes counted of ${sent} sent, by calls on workers ${[...new Set(counted.map((r) => r.worker))].sort().join(' and ')}`,
      );
      print(`  most frequent: ${top.map((b) => `'${String.fromCharCode(b)}' ${hist[b]}`).join(', ')}`);
    } finally {
      view.release();
    }
  } finally {
    await rt.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await stateExample();
