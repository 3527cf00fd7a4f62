// Node conventions an embedding app expects: `await using`, `nuvola --version`, a one-time notice.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRuntime, NuvolaError } from 'nuvola';
import { guestBytes } from './helpers.js';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url).pathname;

describe('Node conventions', () => {
  it('closes the runtime at the end of an `await using` scope', async () => {
    let escaped: Awaited<ReturnType<typeof createRuntime>> | undefined;
    {
      await using rt = await createRuntime({ workers: 1, logger: () => {} });
      await rt.register('echo', new URL('.build/core_echo.wasm', import.meta.url).pathname);
      expect(new TextDecoder().decode((await rt.invoke('echo', 'hi')).output)).toBe('ih'); // core_echo reverses
      escaped = rt;
    }
    const err = await escaped.invoke('echo', 'again').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NuvolaError);
    expect((err as NuvolaError).code).toBe('E_CLOSED');
  });

  it('prints its version', () => {
    const version = (JSON.parse(readFileSync(root + 'package.json', 'utf8')) as { version: string }).version;
    const out = execFileSync(process.execPath, [root + 'dist/runtime/cli/main.js', '--version'], { encoding: 'utf8' });
    expect(out.trim()).toBe(version);
  });

  it('says "in-process global tier" once per process, through the logger', () => {
    const script = [
      "const { createRuntime } = await import('nuvola');",
      'for (let i = 0; i < 3; i++) await (await createRuntime({ workers: 1 })).close();',
    ].join('\n');
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    expect(child.status).toBe(0);
    expect(child.stderr.split('\n').filter((line) => line.includes('in-process global tier'))).toHaveLength(1);
  });

  it('refuses a guest that waits in init() with a coded error that says what to do', async () => {
    await using rt = await createRuntime({ workers: 1, logger: () => {} });
    const err = await rt.register('sleepy', guestBytes('conventions_init_sleep')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NuvolaError);
    expect((err as NuvolaError).code).toBe('E_INSTANTIATE_FAILED');
    expect((err as NuvolaError).message).toContain('do that in main()');
    expect((err as NuvolaError).message).not.toContain('WebAssembly.promising');
    expect((err as NuvolaError).details['reason']).toBe('suspended-in-init');
    // Nothing was left registered: the name can be used again.
    await rt.register('sleepy', guestBytes('core_echo'));
    expect((await rt.invoke('sleepy', 'ab')).returnCode).toBe(2);
  });

  it('sheds load past maxQueue with E_QUEUE_FULL, and takes calls again once the queue drains', async () => {
    await using rt = await createRuntime({ workers: 1, maxQueue: 3, logger: () => {} });
    await rt.register('busy', guestBytes('core_busy'));
    // Made in one turn: none has reached the worker yet, so all count as queued.
    const calls = Array.from({ length: 5 }, () => rt.invoke('busy', '1'));
    const settled = await Promise.allSettled(calls);
    expect(settled.slice(0, 3).every((s) => s.status === 'fulfilled')).toBe(true);
    for (const s of settled.slice(3)) {
      expect(s.status).toBe('rejected');
      const err = (s as PromiseRejectedResult).reason as NuvolaError;
      expect(err.code).toBe('E_QUEUE_FULL');
      expect(err.message).toContain('maxQueue');
    }
    expect((await rt.invoke('busy', '1')).returnCode).toBe(0);
  });
});
