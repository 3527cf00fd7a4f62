// `testGuest` from `nuvola/testing`, as an application's tests use it on their own guests.
import { NuvolaError } from 'nuvola';
import { testGuest } from 'nuvola/testing';
import { describe, expect, it } from 'vitest';

const source = (name: string) => new URL(`guests/${name}.ts`, import.meta.url);

describe('testGuest', () => {
  it('builds a .ts guest, calls it and captures its log lines', async () => {
    await using guest = await testGuest(source('core_log'));
    expect((await guest.invoke('one')).returnCode).toBe(0);
    await guest.invoke('two');
    expect(guest.logs).toEqual(['first line', 'second: one', 'first line', 'second: two']);
  });

  it('decodes output as text and passes register options through', async () => {
    await using echo = await testGuest(source('core_echo'), { function: { timeoutMs: 5000 } });
    expect(await echo.text('abc')).toBe('cba');
    expect(echo.runtime.functions()).toContain('guest');
  });

  it('gives coded errors that point at the guest source', async () => {
    await using trap = await testGuest(source('sourcemap_trap'));
    const err = await trap.invoke('abcdef').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NuvolaError);
    expect((err as NuvolaError).code).toBe('E_GUEST_TRAP');
    expect((err as NuvolaError).message).toMatch(/sourcemap_trap\.ts:10:\d+$/);
  });

  it('exposes state to seed and check', async () => {
    await using counter = await testGuest(source('state_atomic'));
    await counter.state.incrementGlobal('hits', 41);
    expect(await counter.text('inc hits 1')).toBe('42');
  });

  it('refuses a guest that does not build, with the compiler diagnostics', async () => {
    const err = await testGuest(new URL('guests/does_not_exist.ts', import.meta.url)).catch((e: unknown) => e);
    expect((err as NuvolaError).code).toBe('E_BUILD_FAILED');
  });
});
