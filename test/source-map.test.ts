// Guest failures point at the guest's own code: `nuvola build` embeds the source map, register
// moves it onto the rewritten module, and traps and aborts name `file.ts:line:column`.
import { buildGuest, createRuntime, NuvolaError, type Runtime } from 'nuvola';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestBytes } from './helpers.js';

const source = (name: string) => new URL(`guests/${name}.ts`, import.meta.url).pathname;

async function failure(p: Promise<unknown>): Promise<NuvolaError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NuvolaError);
  return err as NuvolaError;
}

describe('guest source positions', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await createRuntime({ workers: 1, logger: () => {} });
  });
  afterAll(() => rt.close());

  it("an abort inside the standard library names the guest's line that caused it", async () => {
    await rt.register('abort', guestBytes('sourcemap_abort'));
    const err = await failure(rt.invoke('abort', 'seven!!'));
    expect(err.code).toBe('E_GUEST_ABORT');
    expect(err.message).toMatch(/Index out of range at \S*sourcemap_abort\.ts:5:\d+ \(in ~lib\/array\.ts:\d+:\d+\)/);
    expect((err.details['frames'] as string[]).some((f) => /sourcemap_abort\.ts:5:\d+$/.test(f))).toBe(true);
  });

  it('a trap in rewritten code (marks inserted after stores) names its line', async () => {
    await rt.register('trap', guestBytes('sourcemap_trap'));
    const err = await failure(rt.invoke('trap', 'abcde'));
    expect(err.code).toBe('E_GUEST_TRAP');
    expect(err.message).toMatch(/unreachable at \S*sourcemap_trap\.ts:10:14$/);
    // The same function answers normally when it does not trap.
    expect((await rt.invoke('trap', 'ab')).returnCode).toBe(2);
  });

  it('unoptimised with names and fully optimised without', { timeout: 120_000 }, async () => {
    for (const [optimizeLevel, debug] of [
      [0, true],
      [3, false],
    ] as const) {
      const name = `trap-O${optimizeLevel}-${debug}`;
      await rt.register(name, await buildGuest(source('sourcemap_trap'), { optimizeLevel, debug }));
      const err = await failure(rt.invoke(name, 'abcde'));
      expect(err.message, name).toMatch(/sourcemap_trap\.ts:10:\d+$/);
    }
  });

  it('a module built without a source map still reports the trap, without a position', async () => {
    await rt.register('plain', await buildGuest(source('sourcemap_trap'), { sourceMap: false }));
    const err = await failure(rt.invoke('plain', 'abcde'));
    expect(err.code).toBe('E_GUEST_TRAP');
    expect(err.message).not.toMatch(/\.ts:\d+:\d+/);
  });
});
