// What a failing guest looks like from the host: coded errors, and a runtime that keeps serving.
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime, NuvolaError } from 'nuvola';

const source = fileURLToPath(new URL('../../../guest/examples/checked.ts', import.meta.url));

export async function errorsExample(print: (line: string) => void = console.log): Promise<void> {
  const rt = await createRuntime({ workers: 2, logger: () => {} });
  try {
    await rt.register('checked', await buildGuest(source), { timeoutMs: 1000 });
    for (const input of ['21', '-4', '8']) {
      try {
        const { output } = await rt.invoke('checked', input);
        print(`  checked('${input}') -> ${new TextDecoder().decode(output)}`);
      } catch (err) {
        const e = err as NuvolaError;
        print(`  checked('${input}') failed: ${e.code} — ${e.message}`);
      }
    }
    try {
      await rt.register('junk', new TextEncoder().encode('not a module'));
    } catch (err) {
      print(`  register('junk') failed: ${(err as NuvolaError).code}`);
    }
    try {
      await rt.invoke('missing');
    } catch (err) {
      print(`  invoke('missing') failed: ${(err as NuvolaError).code}`);
    }
  } finally {
    await rt.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await errorsExample();
