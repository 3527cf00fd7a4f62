import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createRuntime, FUNCTION_DEFAULTS, InvalidOptionError, RUNTIME_DEFAULTS } from 'nuvola';
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

  it('takes its defaults from the one schema', () => {
    expect(RUNTIME_DEFAULTS).toMatchObject({
      maxInputBytes: 16 * 1024 * 1024,
      maxQueue: Infinity,
      idleTimeoutMs: 60_000,
      kernels: { mode: 'auto', maxKernelMs: 10_000 },
      cluster: undefined,
      stateLeaseMs: 30_000,
    });
    expect(typeof RUNTIME_DEFAULTS.logger).toBe('function');
    expect(FUNCTION_DEFAULTS).toMatchObject({
      timeoutMs: 30_000,
      memoryLimitPages: 1024,
      reuse: 'reset',
      abi: 'auto',
      maxConcurrency: undefined,
      stateQuota: { bytes: 256 * 1024 * 1024, keys: 65_536 },
      wasi: { args: [], env: [], dirs: [] },
    });
    // Options are named once: the docs' table has a row for each.
    const table = readFileSync(new URL('../docs/reference/options.md', import.meta.url), 'utf8');
    for (const key of [...Object.keys(RUNTIME_DEFAULTS), ...Object.keys(FUNCTION_DEFAULTS)])
      expect(table).toMatch(new RegExp(`^\\| \`${key}\` +\\|`, 'm'));
  });

  it('checks cluster, chain and group options against the schema, naming the option', async () => {
    const secret = 'x'.repeat(32);
    const cluster = (c: object) =>
      createRuntime({ workers: 1, redis: 'redis://127.0.0.1:1', cluster: { name: 'c', secret, ...c } } as never);
    await expect(cluster({ heartbeatMs: 100, hostTimeoutMs: 150 })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { path: 'options.cluster.hostTimeoutMs' },
      message: expect.stringContaining('an integer from 200 to') as unknown,
    });
    await expect(cluster({ grants: { dirs: [{ host: '/nonexistent-dir' }] } })).rejects.toMatchObject({
      details: { path: 'options.cluster.grants.dirs[0].host' },
    });
    await expect(cluster({ color: 'blue' })).rejects.toMatchObject({ details: { path: 'options.cluster.color' } });
    await expect(createRuntime({ workers: 1, cluster: { name: 'c', secret } } as never)).rejects.toMatchObject({
      details: { path: 'options.redis' },
    });
    await expect(createRuntime({ workers: 1, kernels: { mode: 'tpu' } } as never)).rejects.toMatchObject({
      details: { path: 'options.kernels.mode' },
    });
    await using rt = await createRuntime({ workers: 1, logger: () => {} });
    await rt.register('f', guestBytes('core_hello'));
    await expect(rt.invokeChain(['f'], 'x', { prewarm: 'yes' as never })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { path: 'options.prewarm' },
    });
    await expect(rt.invokeChain(['f'], 'x', { timeoutMs: 0 })).rejects.toMatchObject({ details: { path: 'options.timeoutMs' } });
    await expect(rt.invokeGroup('f', 2, 'x', { placement: 'far' as never })).rejects.toMatchObject({
      details: { path: 'options.placement' },
    });
    await expect(rt.invokeGroup('f', 2, 'x', { stateKey: 'k' } as never)).rejects.toMatchObject({ details: { path: 'options.stateKey' } });
    expect((await rt.invokeChain(['f'], 'x', { prewarm: false })).returnCode).toBe(0);
  });
});
