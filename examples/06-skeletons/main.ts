// Skeletons: the four applications of `nuvola/skeletons`, each checked against a sequential
// run — a Mandelbrot farm, a five-filter image pipeline and its normal form, a keyed
// map-reduce word count, and matrix multiplication by divide and conquer.
import { fileURLToPath } from 'node:url';
import { createRuntime } from 'nuvola';
import { calibrate, explain, normalize, predict, register, run, runAll } from 'nuvola/skeletons';
import * as apps from './apps.js';

export async function skeletonsExample(print: (line: string) => void = console.log): Promise<void> {
  const rt = await createRuntime({ workers: 2, logger: () => {} });
  try {
    await apps.registerGuests(rt);
    const time = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
      const t = performance.now();
      const value = await fn();
      return [value, performance.now() - t];
    };

    const params = { width: 600, height: 200, maxIter: 500 };
    const rows = apps.mandelRows(params);
    // A warm-up pass first: the first calls of a function on each worker pay for instances and JIT.
    await runAll(rt, apps.mandelSkeleton(), rows);
    const [seqRows, seqMs] = await time(() => apps.sequentially(rt, ['mandel_row'], rows));
    const [farmRows, farmMs] = await time(() => runAll(rt, apps.mandelSkeleton(), rows));
    const same = apps.sha256(farmRows) === apps.sha256(seqRows) && apps.sha256(farmRows) === apps.sha256(apps.mandelReference(params));
    print(
      `  mandelbrot ${params.width}×${params.height}: farm ${farmMs.toFixed(0)} ms, sequential ${seqMs.toFixed(0)} ms — image ${same ? 'identical' : 'DIFFERENT'}`,
    );

    const images = apps.makeImages(8, 192, 192);
    const pipeline = apps.imagePipeline();
    const normal = normalize(pipeline, { rt });
    print(`  image pipeline, normal form:\n${explain(normal).replace(/^/gm, '    ')}`);
    const expected = (await apps.sequentially(rt, apps.FILTERS, images)).map((o) => apps.sha256(o)).join();
    await runAll(rt, normal, images);
    const profile = await calibrate(rt, pipeline, images.slice(0, 2));
    for (const [name, skeleton] of [
      ['original', pipeline],
      ['normal form', normal],
    ] as const) {
      const [out, ms] = await time(() => runAll(rt, skeleton, images));
      const predicted = predict(profile, skeleton, { items: images.length, itemBytes: images[0]!.byteLength }).completionMs;
      const ok = out.map((o) => apps.sha256(o)).join() === expected;
      print(
        `  ${name}: ${ms.toFixed(0)} ms (model predicted ${predicted.toFixed(0)} ms) — outputs ${ok ? 'identical' : 'DIFFERENT'} to the sequential run`,
      );
    }

    const text = apps.makeText(100_000);
    const [counted, wcMs] = await time(() => run(rt, apps.wordCountSkeleton(), text));
    const got = apps.decodeCounts(counted);
    const want = apps.countWords(text);
    const exact = got.size === want.size && [...want].every(([w, n]) => got.get(w) === n);
    print(`  word count of 100 000 words: ${got.size} distinct, map-reduce ${wcMs.toFixed(0)} ms — counts ${exact ? 'exact' : 'WRONG'}`);

    // A registered skeleton is called like a function.
    register(rt, 'matmul', apps.matmulSkeleton(64));
    const problem = apps.matmulProblem(256);
    const [product, mmMs] = await time(() => rt.invoke('matmul', problem));
    const equal = Buffer.compare(product.output, apps.matmulReference(problem)) === 0;
    print(
      `  rt.invoke('matmul') on 256×256 (divide and conquer down to 64×64): ${mmMs.toFixed(0)} ms — product ${equal ? 'exact' : 'WRONG'}`,
    );
  } finally {
    await rt.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await skeletonsExample();
