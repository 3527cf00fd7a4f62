// The layering rules of eslint.config.js (no-restricted-imports per folder): each forbidden import
// is refused in the folder it is written for, and what the folder READMEs allow passes.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: new URL('..', import.meta.url).pathname });

async function refused(file: string, specifier: string, typeOnly = false): Promise<boolean> {
  const code = typeOnly ? `import type { X } from '${specifier}';\nexport type Y = X;\n` : `import '${specifier}';\n`;
  const [result] = await eslint.lintText(code, { filePath: file });
  return result!.messages.some((m) => m.ruleId === '@typescript-eslint/no-restricted-imports');
}

const cases: [file: string, specifier: string, refusedExpected: boolean, typeOnly?: boolean][] = [
  ['state/x.ts', '../runtime/errors.js', false],
  ['state/x.ts', '../runtime/options.js', true],
  ['state/x.ts', '../kernels/index.js', true],
  ['state/x.ts', './store.js', false],
  ['kernels/x.ts', '../runtime/pool.js', true],
  ['kernels/x.ts', '../runtime/errors.js', false],
  ['kernels/x.ts', '../runtime/transfer.js', false],
  ['skeletons/x.ts', '../runtime/pool.js', true],
  ['skeletons/x.ts', '../runtime/index.js', false],
  ['cluster/x.ts', '../bench/harness.js', true],
  ['cluster/x.ts', '../runtime/capabilities/io/guest.js', true],
  ['cluster/x.ts', '../runtime/capabilities/io/guest.js', false, true],
  ['cluster/x.ts', '../state/redis-server.js', false],
  ['runtime/x.ts', './capabilities/io/guest.js', true],
  ['runtime/x.ts', './capabilities/guest.js', true],
  ['runtime/x.ts', './capabilities/context.js', false, true],
  ['runtime/x.ts', './capabilities/registry.js', false],
  ['runtime/x.ts', './capabilities/wasi/manifest.js', false],
  ['runtime/x.ts', './capabilities/state/service.js', false],
  ['runtime/x.ts', './worker/entry.js', true],
  ['runtime/x.ts', './worker/interrupt.js', false],
  ['runtime/x.ts', '../test/helpers.js', true],
  ['runtime/cli/x.ts', '../../bench/harness.js', true],
  ['runtime/cli/bench.ts', '../../bench/harness.js', false],
  ['runtime/cli/x.ts', '../capabilities/wasi/guest.js', true],
  ['runtime/snapshot/x.ts', '../pool.js', true],
  ['runtime/snapshot/x.ts', '../wasm-binary.js', false],
  ['runtime/capabilities/x.ts', '../pool.js', true],
  ['runtime/capabilities/x.ts', '../errors.js', false],
  ['runtime/capabilities/wasi/x.ts', '../../options.js', true],
  ['runtime/capabilities/wasi/x.ts', '../context.js', false],
  ['runtime/capabilities/kernels/x.ts', '../../../kernels/index.js', true],
  ['runtime/capabilities/kernels/x.ts', '../../../kernels/wire.js', false, true],
  ['runtime/capabilities/kernels/service.ts', './guest.js', true],
  ['runtime/worker/x.ts', '../runtime.js', true],
  ['runtime/worker/x.ts', '../capabilities/io/guest.js', false],
  ['examples/x.ts', '../runtime/index.js', true],
  ['examples/x.ts', 'nuvola', false],
  ['bench/x.ts', '../test/helpers.js', true],
  ['bench/x.ts', '../runtime/worker/instance.js', false],
  ['test/x.test.ts', '../runtime/capabilities/guest.js', false],
  ['serve/x.ts', '../runtime/index.js', false],
  ['serve/x.ts', '../runtime/option-spec.js', false],
  ['serve/x.ts', '../runtime/pool.js', true],
  ['serve/x.ts', '../state/store.js', true],
  ['runtime/x.ts', '../serve/index.js', true],
];

describe('layering rules', () => {
  it.each(cases)('%s importing %s: refused %s', async (file, specifier, expected, typeOnly) => {
    expect(await refused(file, specifier, typeOnly)).toBe(expected);
  });
});
