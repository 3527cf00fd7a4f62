// Snapshots and cold starts: init() runs once at register; every call starts from the snapshot
// taken after it (reuse 'reset', the default) unless the function opts into keeping state.
// Idle instances and workers go away after idleTimeoutMs; the next call pays a cold start.
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime } from 'nuvola';

const source = fileURLToPath(new URL('../../../guest/examples/greeter.ts', import.meta.url));

export async function coldstartExample(print: (line: string) => void = console.log): Promise<void> {
  const rt = await createRuntime({ workers: 1, idleTimeoutMs: 200, logger: () => {} });
  try {
    const wasm = await buildGuest(source);
    await rt.register('greeter', wasm);
    await rt.register('greeterKeep', wasm, { reuse: 'keep' });
    const say = async (fn: string, who: string): Promise<void> => {
      const r = await rt.invoke(fn, who);
      print(`  ${fn.padEnd(11)} ${who.padEnd(5)} → ${new TextDecoder().decode(r.output)}`);
    };
    for (const who of ['alice', 'bob']) await say('greeter', who);
    for (const who of ['alice', 'bob']) await say('greeterKeep', who);
    print('  (reset: bob never sees alice; keep: the warm instance remembers her)');

    while (rt.stats().workers > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    print(`  after 200 ms idle: ${JSON.stringify({ workers: rt.stats().workers, instances: rt.stats().instances })} (scaled to zero)`);
    const cold = await rt.invoke('greeter', 'carol');
    const warm = await rt.invoke('greeter', 'dave');
    print(`  next call: cold=${cold.cold}, ${cold.durationMs.toFixed(1)} ms (starts a worker, restores an instance)`);
    print(`  the one after: cold=${warm.cold}, ${warm.durationMs.toFixed(2)} ms`);
  } finally {
    await rt.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await coldstartExample();
