// GPU kernels: a guest multiplies matrices through `kernels.matmulF32` and sums the product
// with `kernels.sumF32`; the embedding service registers a WGSL kernel guests could run by name.
import { fileURLToPath } from 'node:url';
import { buildGuest, createRuntime } from 'nuvola';

const source = fileURLToPath(new URL('../../../guest/examples/matmul.ts', import.meta.url));

export async function kernelsExample(print: (line: string) => void = console.log): Promise<void> {
  const rt = await createRuntime({ workers: 2, logger: () => {} });
  try {
    await rt.register('matmul', await buildGuest(source));
    const t = performance.now();
    const result = await rt.invoke('matmul', '128');
    print(`  128×128 product from a guest: ${new TextDecoder().decode(result.output)} in ${(performance.now() - t).toFixed(0)} ms`);
    const stats = rt.stats().kernels!;
    print(
      `  device: ${stats.adapter ?? 'none (CPU path)'}; calls on the ${stats.path.toUpperCase()} path: ${stats.gpuCalls + stats.cpuCalls}`,
    );
    await rt.kernels
      .registerKernel('broken', { wgsl: 'fn main( {', inputs: 1 })
      .catch((err: { code: string; message: string }) => print(`  a kernel that does not compile: ${err.code}`));
  } finally {
    await rt.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await kernelsExample();
