// The reference tables in docs/ are generated from the code (scripts/docs.ts): they must match
// what the generator makes now, and cover every error code and every option.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as nuvola from 'nuvola';
import { ERRORS, makeError, type ErrorCode } from '../dist/runtime/errors.js';
import { StateError as StoreStateError, StateErrorCode } from '../dist/state/errors.js';
import { generated } from '../dist/scripts/docs.js';
import { StateStore } from '../dist/state/store.js';
import { MemoryTier } from '../dist/state/memory-tier.js';

const root = new URL('../', import.meta.url).pathname;

describe('generated reference tables', () => {
  // Generating the API reference compiles the package's sources with the TypeScript compiler: slow on a busy machine.
  it('are committed as the generator makes them (run `npm run docs` after changing errors or options)', async () => {
    const files = await generated();
    expect(files.map((f) => f.path)).toEqual([
      'docs/reference/errors.md',
      'docs/reference/options.md',
      'runtime/options-types.ts',
      'docs/reference/api.md',
    ]);
    for (const file of files) expect(readFileSync(root + file.path, 'utf8'), file.path).toBe(file.text);
  }, 180_000);

  it('list every error code with its class', () => {
    const table = readFileSync(root + 'docs/reference/errors.md', 'utf8');
    const codes = Object.values(nuvola.ErrorCode);
    expect(codes.length).toBe(Object.keys(ERRORS).length);
    for (const code of codes) expect(table).toMatch(new RegExp(`^\\| \`${code}\` +\\| \`${ERRORS[code].class}\` `, 'm'));
  });
});

describe('one source of truth for errors', () => {
  it('builds every code as the class its table entry names, and refuses another', () => {
    for (const code of Object.keys(ERRORS) as ErrorCode[]) {
      const err = makeError(code, 'm', { a: 1 });
      expect(err).toBeInstanceOf(nuvola.NuvolaError);
      expect(err.name).toBe(ERRORS[code].class);
      expect(err).toBeInstanceOf((nuvola as unknown as Record<string, new (...args: never[]) => unknown>)[ERRORS[code].class]);
      expect(err.code).toBe(code);
      expect(nuvola.ErrorCode[code.slice(2) as keyof typeof nuvola.ErrorCode]).toBe(code);
    }
    // A JavaScript caller (no types to stop it) cannot make the class and the code disagree.
    const Guest = nuvola.GuestError as unknown as new (code: string, message: string) => Error;
    expect(() => new Guest('E_TIMEOUT', 'late')).toThrow(/GuestError cannot carry E_TIMEOUT: it is a TimeoutError/);
    expect(() => new Guest('E_NO_SUCH_CODE', 'x')).toThrow(/no such code/);
  });

  it('has one StateError: the state store throws the public class, and a quota as a LimitError', async () => {
    expect(StoreStateError).toBe(nuvola.StateError);
    for (const code of Object.values(StateErrorCode)) expect(code in ERRORS).toBe(true);
    await using rt = await nuvola.createRuntime({ workers: 1, logger: () => {} });
    const bounds = await Promise.resolve()
      .then(() => rt.state.writeAt('docs-k', 10, new Uint8Array(4)))
      .catch((e: unknown) => e);
    expect(bounds).toBeInstanceOf(nuvola.StateError);
    expect(bounds).toMatchObject({ code: 'E_STATE_BOUNDS' });
    // The store itself: a quota is a limit, as the table says, not a StateError.
    const store = new StateStore(new MemoryTier(), { leaseMs: 1000, quota: () => ({ bytes: 4, keys: 1 }) });
    const over = await store.append('docs-q', new Uint8Array(8), 'f').catch((e: unknown) => e);
    expect(over).toBeInstanceOf(nuvola.LimitError);
    expect(over).toMatchObject({ code: 'E_STATE_QUOTA', details: { function: 'f' } });
  });
});
