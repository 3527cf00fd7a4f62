import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LimitError, type NuvolaError } from 'nuvola';
import { crashWorker, until, whenRegistering } from 'nuvola/testing';
import { closedAfterEach, guestBytes, guestPath, runScript, text, uninstrumentedLoop } from './helpers.js';

const start = closedAfterEach();

function secret(): { write: Uint8Array; grow: Uint8Array; trap: Uint8Array; read: Uint8Array } {
  const bytes = randomBytes(16);
  // No zero byte: the guest treats a zero global as "clean".
  for (let i = 0; i < 16; i++) if (bytes[i] === 0) bytes[i] = 1;
  const frame = (mode: string, body: Uint8Array): Uint8Array => Uint8Array.from([mode.charCodeAt(0), ...body]);
  return {
    write: frame('W', bytes),
    grow: frame('G', bytes),
    trap: frame('T', bytes),
    read: frame(
      'R',
      bytes.map((b) => b ^ 0x55),
    ),
  };
}

describe('snapshots', () => {
  it('runs init() once and restores every instance from its snapshot (A=5, B=102)', async () => {
    const { rt, logs } = await start({ workers: 2 });
    await rt.register('zygote', guestBytes('snapshot_zygote'));
    // Concurrent calls need more instances than the one warm per worker: restored, not re-initialised.
    const results = await Promise.all(Array.from({ length: 64 }, () => rt.invoke('zygote')));
    expect(new Set(results.map((r) => text(r.output)))).toEqual(new Set(['5,102,1']));
    expect(new Set(results.map((r) => r.worker))).toEqual(new Set([0, 1]));
    expect(logs.filter((l) => l.function === 'zygote' && l.message === 'init ran')).toHaveLength(1);
    expect(rt.stats().coldStarts + rt.stats().warmStarts).toBe(64);
  });

  it('snapshots a guest without init() after its start-up code', async () => {
    const { rt } = await start({ workers: 1 });
    await rt.register('hello', guestBytes('core_hello'));
    expect(text((await rt.invoke('hello', 'x')).output)).toBe('Hello x');
  });

  it('fails register with a typed error when init() or start-up code traps, and serves on', async () => {
    const { rt } = await start({ workers: 1 });
    const err = (await rt.register('trap', guestBytes('core_start_trap')).catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_INSTANTIATE_FAILED');
    expect(err.message).toMatch(/could not be instantiated/);
    await rt.register('hello', guestBytes('core_hello'));
    expect(text((await rt.invoke('hello', 'y')).output)).toBe('Hello y');
  });
});

describe('snapshots when workers are lost', () => {
  it('runs init() again only when the worker running it is lost, not when another one is', async () => {
    const { rt, logs } = await start({ workers: 2 });
    const registering = rt.register('slow', guestBytes('snapshot_init_slow_log'));
    await whenRegistering(rt, 0);
    crashWorker(rt, 1);
    await registering;
    expect(logs.filter((l) => l.function === 'slow' && l.message === 'init ran')).toHaveLength(1);
    const results = await Promise.all(Array.from({ length: 8 }, () => rt.invoke('slow')));
    expect(new Set(results.map((r) => r.worker))).toEqual(new Set([0, 1]));
  });

  it('stops counting the instances of a worker that was replaced against maxInstances', async () => {
    const { rt } = await start({ workers: 1, maxInstances: 3 });
    // Code without interruption checks: a call looping past its timeout takes its worker down.
    await rt.register('spin', await uninstrumentedLoop(), { timeoutMs: 100 });
    await rt.register('loop', guestBytes('core_loop'), { timeoutMs: 100 });
    for (let i = 0; i < 3; i++) {
      const err = (await rt.invoke('spin').catch((e: unknown) => e)) as NuvolaError;
      expect(err.code).toBe('E_TIMEOUT');
    }
    // Each looping call that started took its worker down (one still queued when its time ran
    // out, on a loaded machine, is dropped unstarted instead): at least one replacement.
    await until(() => rt.stats().workerRestarts >= 1 && rt.stats().inflight === 0);
    // (A generous timeout: the replacement worker may still be starting on a loaded machine;
    // what is checked is that no E_INSTANCE_LIMIT comes from the lost worker's instances.)
    const after = await Promise.all([0, 1, 2].map(() => rt.invoke('loop', 'no', { timeoutMs: 10_000 })));
    expect(after.every((r) => r.returnCode === 0)).toBe(true);
  });
});

describe('isolation between calls', () => {
  it('keeps instances apart at the largest memoryLimitPages (65536: a 4 GiB memory each)', async () => {
    const { rt } = await start({ workers: 1 });
    await rt.register('probe', guestBytes('snapshot_secret'), { memoryLimitPages: 65536 });
    await rt.register('sleepy', guestBytes('snapshot_sleep_secret'), { memoryLimitPages: 65536 });
    const s = secret();
    const clean = text((await rt.invoke('probe', s.read)).output);
    await rt.invoke('probe', s.write);
    expect(text((await rt.invoke('probe', s.read)).output)).toBe(clean);
    // Several instances alive at once, each with its own slice of the dirty map.
    const write = (secretText: string, ms: number): Uint8Array => Uint8Array.from([0x57, ...Buffer.from(secretText.padEnd(16, '_')), ms]);
    const written = await Promise.all(
      [write('first', 60), write('SECRET-OF-CALL-2', 40), write('third', 5)].map((w) => rt.invoke('sleepy', w)),
    );
    expect(written.map((r) => text(r.output))).toEqual(['written', 'written', 'written']);
    const read = await Promise.all([0, 1, 2].map(() => rt.invoke('sleepy', Uint8Array.of(0x52, 10))));
    expect(read.map((r) => text(r.output))).toEqual(Array(3).fill('.'.repeat(16)));
  });

  it('gives host imports the calling instance, also when many suspended instances resume together', async () => {
    const { rt } = await start({ workers: 2 });
    await rt.register('echo', guestBytes('snapshot_sleep_echo'));
    const inputs = Array.from({ length: 200 }, (_, i) => `caller-${i}`);
    const results = await Promise.all(inputs.map((input) => rt.invoke('echo', input)));
    expect(results.map((r) => text(r.output))).toEqual(inputs.map((input) => `${input}|${input}`));
    // State requests are answered in batches: many instances resume in the same turn.
    await rt.register('stateEcho', guestBytes('snapshot_state_echo'));
    const stateResults = await Promise.all(inputs.map((input) => rt.invoke('stateEcho', input)));
    expect(stateResults.map((r) => text(r.output))).toEqual(inputs.map((input) => `${input}|0`));
  });

  it('resets globals, static data, heap and host-written input: a later call finds no trace of a secret', async () => {
    const { rt } = await start({ workers: 1 });
    await rt.register('probe', guestBytes('snapshot_secret'));
    const s = secret();
    const clean = text((await rt.invoke('probe', s.read)).output);
    expect(clean).toMatch(/^0 global-clean kept-clean big-clean/);
    expect(text((await rt.invoke('probe', s.write)).output)).toBe('written');
    const after = await rt.invoke('probe', s.read);
    // Same worker, warm instance: the in-place reset did the work.
    expect(after.cold).toBe(false);
    expect(text(after.output)).toBe(clean);
  });

  it('replaces an instance whose call grew its memory: the next call sees the snapshot size and no secret', async () => {
    const { rt } = await start({ workers: 1 });
    await rt.register('probe', guestBytes('snapshot_secret'));
    const s = secret();
    const clean = text((await rt.invoke('probe', s.read)).output);
    await rt.invoke('probe', s.grow);
    const after = await rt.invoke('probe', s.read);
    expect(after.cold).toBe(true);
    expect(text(after.output)).toBe(clean);
  });

  it('resets an instance whose call trapped after writing a secret, and reuses it clean', async () => {
    const { rt } = await start({ workers: 1 });
    await rt.register('probe', guestBytes('snapshot_secret'));
    const s = secret();
    const clean = text((await rt.invoke('probe', s.read)).output);
    const err = (await rt.invoke('probe', s.trap).catch((e: unknown) => e)) as NuvolaError;
    expect(err.code).toBe('E_GUEST_TRAP');
    const after = await rt.invoke('probe', s.read);
    expect(after.cold).toBe(false);
    expect(text(after.output)).toBe(clean);
  });

  it('recycles the memory of a retired instance for the next restore, reset: no secret survives', async () => {
    // No idle instance is kept, so every call restores one, from a recycled memory when there is one.
    const { rt } = await start({ workers: 1, maxIdleInstances: 0, memoryPoolSize: 2 });
    await rt.register('probe', guestBytes('snapshot_secret'));
    const s = secret();
    const clean = await rt.invoke('probe', s.read);
    expect(clean.cold).toBe(true);
    expect(rt.stats()).toMatchObject({ instances: 0, spareMemories: 1 });
    await rt.invoke('probe', s.write);
    expect(rt.stats()).toMatchObject({ instances: 0, spareMemories: 1 });
    const after = await rt.invoke('probe', s.read);
    expect(after.cold).toBe(true);
    expect(text(after.output)).toBe(text(clean.output));
  });

  it("with reuse 'keep', the same probe finds the secret (so the probe can see a leak)", async () => {
    const { rt } = await start({ workers: 1 });
    await rt.register('probe', guestBytes('snapshot_secret'), { reuse: 'keep' });
    const s = secret();
    await rt.invoke('probe', s.write);
    const after = text((await rt.invoke('probe', s.read)).output);
    expect(after).toMatch(/^[1-9]\d* global-set kept-set/);
  });
});

describe('scale to zero', () => {
  it('releases idle instances and workers after idleTimeoutMs; the next call is a cold start', async () => {
    const { rt } = await start({ workers: 2, idleTimeoutMs: 50 });
    await rt.register('hello', guestBytes('core_hello'));
    await until(() => rt.stats().workers === 0);
    expect(rt.stats()).toMatchObject({ workers: 0, instances: 0, workersParked: 2 });
    const result = await rt.invoke('hello', 'again');
    expect(text(result.output)).toBe('Hello again');
    expect(result.cold).toBe(true);
    expect(rt.stats()).toMatchObject({ coldStarts: 1 });
    expect(rt.stats().workers).toBeGreaterThanOrEqual(1);
  });

  it('keeps minWorkers running, and releases their idle instances', async () => {
    const { rt } = await start({ workers: 2, idleTimeoutMs: 50, minWorkers: 1 });
    await rt.register('hello', guestBytes('core_hello'));
    await until(() => rt.stats().instances === 0 && rt.stats().workers === 1);
    expect((await rt.invoke('hello', 'z')).cold).toBe(true);
  });

  it('a worker started from zero loads the host imports its functions need before their calls run', async () => {
    const { rt, logs } = await start({ workers: 1, idleTimeoutMs: 50 });
    await rt.register('hello', guestBytes('core_hello'));
    // Imports WASI besides nuvola:io: the new worker loads that capability when it learns the function.
    await rt.register('sdk', guestBytes('core_wasi_print'));
    await until(() => rt.stats().workers === 0);
    const [sdk, hello] = await Promise.all([rt.invoke('sdk'), rt.invoke('hello', 'zero')]);
    expect(text(sdk.output)).toBe('the output');
    expect(text(hello.output)).toBe('Hello zero');
    expect(logs.filter((l) => l.function === 'sdk').map((l) => l.message)).toEqual(['to stdout', 'and a partial line']);
  });

  it('a capability loaded for a new function leaves a call suspended meanwhile unharmed', async () => {
    const { rt } = await start({ workers: 1 });
    await rt.register('sleep', guestBytes('core_sleep'));
    await rt.register('hello', guestBytes('core_hello'));
    const sleeping = rt.invoke('sleep', '150');
    await until(() => rt.stats().instances >= 1);
    await rt.register('sdk', guestBytes('core_wasi_print'));
    expect(text((await rt.invoke('sdk')).output)).toBe('the output');
    expect(text((await sleeping).output)).toBe('slept 150');
    expect(text((await rt.invoke('hello', 'after')).output)).toBe('Hello after');
  });

  it('starts parked workers again under concurrent load', async () => {
    const { rt } = await start({ workers: 2, idleTimeoutMs: 50 });
    await rt.register('sleep', guestBytes('core_sleep'));
    await until(() => rt.stats().workers === 0);
    const results = await Promise.all(Array.from({ length: 8 }, () => rt.invoke('sleep', '20')));
    expect(results.every((r) => text(r.output) === 'slept 20')).toBe(true);
    expect(new Set(results.map((r) => r.worker))).toEqual(new Set([0, 1]));
  });
});

describe('pre-warming', () => {
  it('prewarm() restores idle instances ahead of calls, so they start warm', async () => {
    const { rt } = await start({ workers: 1 });
    await rt.register('zygote', guestBytes('snapshot_zygote'));
    rt.prewarm('zygote', { instances: 4 });
    await until(() => rt.stats().instances === 4);
    // Four concurrent calls (each suspends nothing, but they arrive together): all warm.
    const results = await Promise.all([0, 1, 2, 3].map(() => rt.invoke('zygote')));
    expect(results.every((r) => !r.cold)).toBe(true);
    expect(() => rt.prewarm('nope')).toThrow(/no function named 'nope'/);
  });

  it('invokeChain() feeds each stage the previous output, and stops at a non-zero return code', async () => {
    const { rt } = await start({ workers: 1 });
    await rt.register('echo', guestBytes('core_echo'));
    await rt.register('hello', guestBytes('core_hello'));
    const result = await rt.invokeChain(['hello', 'hello', 'hello'], 'x');
    expect(text(result.output)).toBe('Hello Hello Hello x');
    expect(result.stages.map((s) => s.function)).toEqual(['hello', 'hello', 'hello']);
    // core_echo returns its input's length: the chain stops there, with echo's result.
    const stopped = await rt.invokeChain(['hello', 'echo', 'hello'], 'x');
    expect(text(stopped.output)).toBe('x olleH');
    expect(stopped.returnCode).toBe(7);
    expect(stopped.stages.map((s) => s.function)).toEqual(['hello', 'echo']);
  });
});

describe('density', () => {
  it('fails a call that needs an instance past maxInstances with E_INSTANCE_LIMIT, and serves on', async () => {
    const { rt } = await start({ workers: 1, maxInstances: 3 });
    // maxConcurrency (default: half of maxInstances) would queue the calls instead.
    await rt.register('sleep', guestBytes('core_sleep'), { maxConcurrency: 4 });
    // Suspended calls each hold an instance: the fourth has none.
    const calls = [0, 1, 2, 3].map((i) =>
      rt.invoke('sleep', String(50 + i)).then(
        (r) => text(r.output),
        (e: NuvolaError) => e,
      ),
    );
    const outcomes = await Promise.all(calls);
    const failures = outcomes.filter((o): o is NuvolaError => typeof o !== 'string');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(LimitError);
    expect(failures[0]!.code).toBe('E_INSTANCE_LIMIT');
    expect(failures[0]!.message).toMatch(/maxInstances=3/);
    expect(text((await rt.invoke('sleep', '1')).output)).toBe('slept 1');
    expect(rt.stats().instances).toBeLessThanOrEqual(3);
  });

  it("turns the engine's own limit (about 16k Wasm memories per process) into E_INSTANCE_LIMIT, never a crash", async () => {
    const script = `
      import { createRuntime } from 'nuvola';
      const rt = await createRuntime({ workers: 1, logger: () => {} });
      await rt.register('sleep', ${JSON.stringify(guestPath('core_sleep'))});
      const hog = [];
      try { for (;;) hog.push(new WebAssembly.Memory({ initial: 1 })); } catch {}
      // The one warm instance serves; concurrent calls need new instances. (A few may still
      // find room: a failed allocation makes the engine collect garbage memories first.)
      const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => rt.invoke('sleep', '30')));
      const codes = outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : o.reason.code));
      const after = await rt.invoke('sleep', '1').then(() => 'ok', (e) => e.code);
      console.log(JSON.stringify({ held: hog.length, codes, after }));
      hog.length = 0;
      await rt.close();
    `;
    const { stdout, code } = await runScript(script);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { held: number; codes: string[]; after: string };
    expect(report.held).toBeGreaterThan(1000);
    expect(report.codes).toContain('ok');
    expect(report.codes).toContain('E_INSTANCE_LIMIT');
    expect(report.codes.every((c) => c === 'ok' || c === 'E_INSTANCE_LIMIT')).toBe(true);
    expect(report.after).toBe('ok');
  });
});

describe('soak', () => {
  it('keeps memory flat over 300k invocations with reset (rss after 150k and after 300k)', async () => {
    // A fresh process with --expose-gc, collecting every 50k calls: outputs are transferred to
    // the main thread, and until it collects them their memory counts in rss too.
    const script = `
      import { createRuntime } from 'nuvola';
      const rt = await createRuntime({ workers: 2, logger: () => {} });
      await rt.register('zygote', ${JSON.stringify(guestPath('snapshot_zygote'))});
      const rss = [];
      const decoder = new TextDecoder();
      let wrong = 0;
      for (let i = 1; i <= 300; i++) {
        const results = await Promise.all(Array.from({ length: 1000 }, () => rt.invoke('zygote')));
        for (const r of results) if (decoder.decode(r.output) !== '5,102,1') wrong++;
        if (i % 50 === 0) { globalThis.gc(); rss.push(process.memoryUsage().rss); }
      }
      console.log(JSON.stringify({ rss, wrong, stats: rt.stats() }));
      await rt.close();
    `;
    const { stdout, stderr, code } = await runScript(script, ['--expose-gc'], 60_000);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { rss: number[]; wrong: number; stats: { instances: number; completed: number } };
    expect(report.wrong).toBe(0);
    expect(report.stats).toMatchObject({ completed: 300_000, instances: 2 });
    // rss after 50k, 100k, ... 300k. Measured: the workers' heaps settle by about 150k calls
    // and stay flat. A leak of even 300 bytes per call would add 45 MB over the second half.
    expect(report.rss[5]! - report.rss[2]!).toBeLessThan(40 * 1024 * 1024);
  }, 90_000);

  it('survives 50 unregister/register cycles without piling up instances', async () => {
    const { rt } = await start({ workers: 2 });
    for (let i = 0; i < 50; i++) {
      await rt.register('zygote', guestBytes('snapshot_zygote'));
      expect(text((await rt.invoke('zygote')).output)).toBe('5,102,1');
      rt.unregister('zygote');
    }
    await until(() => rt.stats().instances === 0);
    await rt.register('zygote', guestBytes('snapshot_zygote'));
    expect(rt.stats().instances).toBe(2);
  });
});
