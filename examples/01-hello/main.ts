// Build a guest, register it, call it: the smallest complete use of nuvola.
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime } from 'nuvola';

const source = fileURLToPath(new URL('../../../guest/examples/hello.ts', import.meta.url));

export async function helloExample(print: (line: string) => void = console.log): Promise<void> {
  const wasm = await buildGuest(source);
  const rt = await createRuntime({ workers: 2, logger: (e) => print(`  guest log [${e.function}]: ${e.message}`) });
  try {
    await rt.register('hello', wasm, { timeoutMs: 5000, memoryLimitPages: 256 });
    const { output, returnCode, worker } = await rt.invoke('hello', 'nuvola');
    print(`  hello('nuvola') -> "${new TextDecoder().decode(output)}" (return code ${returnCode}, worker ${worker})`);
  } finally {
    await rt.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await helloExample();
