import { describe, expect, it } from 'vitest';
import { createRuntime, InvalidOptionError } from 'nuvola';
import { guestBytes } from './helpers.js';

describe('options', () => {
  it.each([
    [{ workers: 0 }, 'options.workers'],
    [{ workers: 1.5 }, 'options.workers'],
    [{ maxInputBytes: -1 }, 'options.maxInputBytes'],
    [{ logger: 'stderr' }, 'options.logger'],
    [{ wrokers: 2 }, 'options.wrokers'],
    [{ maxQueuedMessageBytes: -1 }, 'options.maxQueuedMessageBytes'],
    [{ maxChainedOutputBytes: '1MiB' }, 'options.maxChainedOutputBytes'],
  ])('rejects %j naming %s, before starting any worker', async (options, path) => {
    const err = await createRuntime(options as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect(err).toMatchObject({ code: 'E_INVALID_OPTION', details: { path } });
  });

  it('rejects bad function and invoke options', async () => {
    const rt = await createRuntime({ workers: 1 });
    try {
      await expect(rt.register('f', guestBytes('core_hello'), { timeoutMs: 0 })).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        details: { path: 'options.timeoutMs' },
      });
      await expect(rt.register('f', guestBytes('core_hello'), { memoryLimitPages: 70000 })).rejects.toMatchObject({
        details: { path: 'options.memoryLimitPages' },
      });
      await expect(rt.register('bad name!', guestBytes('core_hello'))).rejects.toMatchObject({ details: { path: 'name' } });
      await expect(rt.register('f', guestBytes('core_hello'), { stateQuota: { bytes: -1 } })).rejects.toMatchObject({
        details: { path: 'options.stateQuota.bytes' },
      });
      await expect(rt.register('f', guestBytes('core_hello'), { stateQuota: { values: 3 } as never })).rejects.toMatchObject({
        details: { path: 'options.stateQuota.values' },
      });
      await expect(rt.register('f', guestBytes('core_hello'), { maxConcurrency: 1.5 })).rejects.toMatchObject({
        details: { path: 'options.maxConcurrency' },
      });
      await rt.register('f', guestBytes('core_hello'));
      await expect(rt.invoke('f', 'x', { timeoutMs: -5 })).rejects.toMatchObject({ details: { path: 'options.timeoutMs' } });
      await expect(rt.invoke('f', 42 as never)).rejects.toMatchObject({ code: 'E_INVALID_OPTION', details: { path: 'input' } });
    } finally {
      await rt.close();
    }
  });
});
