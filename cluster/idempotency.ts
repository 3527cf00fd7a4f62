/**
 * Main thread. Idempotency keys: a call with a key runs once to completion across the cluster.
 * The first completion is recorded (`done:<function> <key>`, signed, with the input's hash);
 * while a host runs a key it holds a lease (`run:<function> <key>`) renewed with its heartbeat,
 * so a second host waits for the record instead of running the call again; calls with one key
 * at once on one host share one run. Outcomes of calls that never started are not recorded.
 */
import { ErrorCode, makeError } from '../runtime/errors.js';
import { Bookkeeping } from './batching.js';
import type { Outcome } from './codec.js';
import { backoff, sleep, unavailable, type ClusterContext } from './context.js';
import { unknownFunction } from './registry.js';
import { sha256 } from './seal.js';

export class Idempotency {
  /**
   * Calls with an idempotency key this host runs now, by their lease's key (see
   * ClusterKeys.running) → the lease's holder value: renewed with the heartbeat.
   */
  private readonly leases = new Map<string, string>();
  /**
   * Runs of idempotency keys on this host, by function and key, with their input's hash: a
   * second call with a running key and the same input joins it.
   */
  private readonly keyedRuns = new Map<string, { input: string; run: Promise<Outcome> }>();

  /** Begins and records of keyed calls, one script per event-loop turn (batching.ts). */
  private readonly bookkeeping: Bookkeeping;

  constructor(private readonly ctx: ClusterContext) {
    this.bookkeeping = new Bookkeeping(ctx);
  }

  /** Renews the leases of the keyed calls running here (with each heartbeat). */
  renew(): void {
    const { ctx } = this;
    for (const [lease, holder] of this.leases) void ctx.redis.nuvolaRenew(lease, holder, ctx.settings.hostTimeoutMs).catch(() => 0);
  }

  /**
   * Runs `run` once per idempotency key across the cluster: a recorded result answers at once;
   * while this host runs the key another call with it joins that run; while another host
   * holds the key's lease this one waits for its record (or for the lease to lapse, when that
   * host died, and then runs it itself). Outcomes of calls that never started (the deadline
   * passed first, the code could not be fetched, the runtime closed) are not recorded.
   */
  async keyed(key: string, deadline: number, name: string, input: Uint8Array, run: () => Promise<Outcome>): Promise<Outcome> {
    // No function has a space in its name (register() refuses it), and the key's Redis names
    // rely on that (`done:<fn> <key>`): 'a b' with key 'c' would name the record of 'a' with
    // key 'b c' — and, failing its MAC there, delete it. Such a name is no function.
    if (name.includes(' ')) {
      const outcome: Outcome = { error: unknownFunction(name, this.ctx.settings.name).toWire() };
      this.ctx.unstarted.add(outcome);
      return outcome;
    }
    const inputHash = sha256(input).toString('hex');
    const id = `${name} ${key}`;
    for (;;) {
      const joined = this.keyedRuns.get(id);
      if (joined === undefined) {
        const running = this.keyedRun(key, deadline, name, inputHash, run).finally(() => this.keyedRuns.delete(id));
        this.keyedRuns.set(id, { input: inputHash, run: running });
        return running;
      }
      if (joined.input !== inputHash) return this.conflict(name, key);
      // Joined by this call's own deadline; a run that never started (its deadline was
      // shorter, say) leaves this one to try itself.
      let timer: NodeJS.Timeout | undefined;
      const own = new Promise<Outcome>((resolve) => {
        timer = setTimeout(
          () =>
            resolve(
              this.late(
                name,
                key,
                'was still running on this host (another call with the key) at its deadline; that run records its result',
              ),
            ),
          Math.max(1, deadline - Date.now()),
        );
      });
      const outcome = await Promise.race([joined.run, own]).finally(() => clearTimeout(timer));
      if (this.ctx.unstarted.has(outcome) && Date.now() < deadline) {
        await joined.run; // settled already, or about to: its entry goes with it
        continue;
      }
      return outcome;
    }
  }

  /** The outcome of a keyed call whose deadline came before it started (not recorded). */
  private late(name: string, key: string, why = 'did not start before its deadline (nothing is recorded under the key)'): Outcome {
    const outcome: Outcome = {
      error: makeError(ErrorCode.TIMEOUT, `'${name}' with idempotency key '${key}' ${why}`, {
        function: name,
        idempotencyKey: key,
      }).toWire(),
    };
    this.ctx.unstarted.add(outcome);
    return outcome;
  }

  /** The outcome of a keyed call whose key names a call of the function with another input (not recorded). */
  private conflict(name: string, key: string): Outcome {
    const outcome: Outcome = {
      error: makeError(
        ErrorCode.IDEMPOTENCY_CONFLICT,
        `idempotency key '${key}' already names a call of '${name}' with another input; the call did not run — a key names one invocation: use a new key for new input`,
        { function: name, idempotencyKey: key },
      ).toWire(),
    };
    this.ctx.unstarted.add(outcome);
    return outcome;
  }

  private async keyedRun(key: string, deadline: number, name: string, inputHash: string, run: () => Promise<Outcome>): Promise<Outcome> {
    const { ctx } = this;
    const done = ctx.keys.done(name, key);
    const running = ctx.keys.running(name, key);
    // The lease names the input too: a call with another input sees the conflict at once.
    const holder = ctx.entries.lease(name, key, inputHash);
    try {
      for (;;) {
        if (Date.now() >= deadline) return this.late(name, key);
        const [state, value] = await ctx.bounded(this.bookkeeping.begin(done, running, holder));
        if (state === 1) {
          const record = ctx.entries.openRecord(name, key, value!);
          if (record !== undefined) return record.input === inputHash ? record.outcome : this.conflict(name, key);
          // Forged: it does not stand (dropped unless replaced meanwhile); look again.
          await ctx.bounded(ctx.redis.nuvolaRelease(done, value!));
          continue;
        }
        if (state === 0) break;
        const leased = ctx.entries.openLease(name, key, value!.toString());
        if (leased === undefined) {
          // Planted: it does not stand (dropped unless replaced meanwhile); look again.
          await ctx.bounded(ctx.redis.nuvolaRelease(running, value!));
          continue;
        }
        if (leased !== inputHash) return this.conflict(name, key);
        if (Date.now() >= deadline) {
          return this.late(name, key, 'was still running on another host at its deadline; that run records its result');
        }
        await sleep(Math.min(50, ctx.settings.heartbeatMs));
      }
    } catch (err) {
      const outcome: Outcome = {
        error: unavailable(
          `starting the call with idempotency key '${key}'`,
          err,
          'the call did not run — retry it with the same key',
        ).toWire(),
      };
      ctx.unstarted.add(outcome);
      return outcome;
    }
    this.leases.set(running, holder);
    try {
      const outcome = await run();
      if (ctx.unstarted.has(outcome)) {
        void ctx.bounded(ctx.redis.nuvolaRelease(running, holder)).catch(() => 0); // else it lapses by itself
        return outcome;
      }
      // It ran: the record must be written, or a retry would run it again. Keep trying while
      // the caller waits (the lease is renewed meanwhile); past that, answer with the outcome.
      const record = ctx.entries.record(name, key, inputHash, outcome);
      for (let attempt = 0; ; attempt++) {
        try {
          const stands = await ctx.bounded(this.bookkeeping.record(done, running, holder, record));
          const opened = ctx.entries.openRecord(name, key, stands);
          if (opened !== undefined) return opened.input === inputHash ? opened.outcome : this.conflict(name, key);
          // A forged record was there first: dropped, then this one is recorded.
          await ctx.bounded(ctx.redis.nuvolaRelease(done, stands));
          if (Date.now() >= deadline) return outcome;
        } catch (err) {
          if (ctx.closed || Date.now() >= deadline) {
            ctx.warn(
              `cluster: the result for idempotency key '${key}' could not be recorded (${(err as Error).message}); a retry with the key may run it again`,
            );
            return outcome;
          }
          await backoff(attempt);
        }
      }
    } finally {
      this.leases.delete(running);
    }
  }
}
