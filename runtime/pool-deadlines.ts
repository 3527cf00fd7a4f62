/**
 * Main thread. The pool's deadlines: what happens to a call past its deadline or aborted by
 * its caller (interrupted on the CPU, cancelled on its worker, dropped from the queue, or its
 * worker stopped as the last resort), `cpuLimitMs`, calls that run on after they failed, and
 * cancels a worker leaves unanswered. Run by the pool's sweep and by its deadline timer.
 */
import { ErrorCode, makeError, type NuvolaError } from './errors.js';
import { Control } from './protocol.js';
import { cpuBound, stopForCpu } from './worker/meter.js';
import type { NextDeadline } from './deadline-timer.js';
import type { Pending, PoolCore, Slot } from './pool-types.js';

/** How often deadlines are checked, in milliseconds. */
export const SWEEP_INTERVAL_MS = 5;
/**
 * How long guest code may keep the CPU on behalf of a call that has already failed (so that
 * no deadline of its own can stop it) before its worker is replaced, in milliseconds.
 */
const ZOMBIE_GRACE_MS = 1000;
/** How long a worker has to acknowledge a cancelled call before the caller is answered anyway, in ms. */
const CANCEL_GRACE_MS = 100;
/**
 * How long a call on the CPU may go on after its interrupt word was set before its worker is
 * stopped instead: the checks run at every loop iteration and call, so only a long host call
 * (a big copy, a blocking file operation) keeps a guest from reaching one this long.
 */
export const INTERRUPT_GRACE_MS = 1000;

/** What a call past its deadline — or aborted by its caller — is answered with. */
export function lateError(pending: Pending, where: string, started = true): NuvolaError {
  return pending.aborted ?? timeoutError(pending, where, started);
}

/** `started: false`: the call never started (the cluster records nothing for it). */
export function timeoutError(pending: Pending, where: string, started = true): NuvolaError {
  const { fn, timeoutMs } = pending.request;
  return makeError(
    ErrorCode.TIMEOUT,
    `function '${fn}' did not finish within timeoutMs=${timeoutMs} (${where}); raise timeoutMs in register() or invoke() if it needs longer`,
    { function: fn, timeoutMs, ...(started ? {} : { started: false }) },
  );
}

/** The deadline timer went off: handles the calls past their deadline; says which comes next. */
export function deadlinesDue(core: PoolCore, now: number): NextDeadline {
  const next: NextDeadline = { at: Infinity, onCpu: false };
  for (const slot of core.slots) {
    if (slot.stopReason !== undefined || slot.dead) continue;
    sweepCalls(core, slot, now);
    for (const pending of slot.inflight.values()) {
      const { deadline, id } = pending.request;
      if (pending.settled || deadline <= now || deadline >= next.at) continue;
      next.at = deadline;
      next.onCpu = Atomics.load(slot.control, Control.RUNNING) === id;
    }
  }
  return next;
}

export function sweepCalls(core: PoolCore, slot: Slot, now: number): void {
  // Read RUNNING first: the worker sets it before bumping STARTED.
  const running = Atomics.load(slot.control, Control.RUNNING);
  const started = Atomics.load(slot.control, Control.STARTED);
  if (running !== 0 && slot.inflight.get(running)?.settled !== false) {
    // Guest code runs for a call nobody waits for (it failed or timed out meanwhile).
    if (slot.zombie?.id !== running) {
      slot.zombie = { id: running, since: now };
      // A call that failed (or timed out) but still runs: instrumented code stops at its next
      // check, other code with its worker below. Not a call the pool does not know yet (a
      // chained call its worker runs itself, whose chainLocal message is on its way).
      if (slot.inflight.get(running)?.settled === true) Atomics.store(slot.interrupt.word, 0, running);
    } else if (now - slot.zombie.since > ZOMBIE_GRACE_MS) {
      core.counters.terminations++;
      void core.stop(slot, `call ${running} kept running after it had failed`);
      return;
    }
  } else {
    slot.zombie = undefined;
  }
  if (running !== 0) sweepCpu(core, slot, running);
  // On the CPU for a call still waited for: a long call, which its own deadline bounds.
  if (running !== 0 && slot.inflight.get(running)?.settled === false) slot.freeSince = undefined;
  else slot.freeSince ??= now;
  const freeSince = slot.freeSince;
  for (const pending of slot.inflight.values()) {
    // A cancel the worker has not answered for this long (it answers every cancel, and the
    // call leaves `inflight` then): the worker is stuck, in guest code RUNNING does not name.
    // Not while it runs a call still waited for, nor just after: it reads its cancels after
    // that call, and that call's result can reach this thread before the cancel's answer.
    if (pending.cancelBy !== undefined && freeSince !== undefined && now >= Math.max(pending.cancelBy, freeSince) + ZOMBIE_GRACE_MS) {
      core.counters.terminations++;
      void core.stop(slot, `a cancel of call ${pending.request.id} went unanswered`);
      return;
    }
    if (pending.settled || (now < pending.request.deadline && pending.aborted === undefined)) continue;
    const { id, fn, timeoutMs } = pending.request;
    if (running === id) {
      // The guest is on the worker's CPU. Its code checks the worker's interrupt word at every
      // function entry and loop header: naming the call there makes it trap at its next check,
      // and the worker answers with E_TIMEOUT and goes on. Code the rewrite could not
      // instrument — or a call still running INTERRUPT_GRACE_MS later (a long host call) —
      // leaves stopping the thread as the last resort.
      const interruptible = core.functions.get(fn)?.layout.interruptible === true;
      if (interruptible && pending.interruptedAt === undefined) {
        pending.interruptedAt = now;
        Atomics.store(slot.interrupt.word, 0, id);
        core.counters.interrupts++;
        continue;
      }
      if (interruptible && now - pending.interruptedAt! < INTERRUPT_GRACE_MS) continue;
      core.fail(pending, lateError(pending, 'its guest was still running and its worker was replaced'));
      core.counters.terminations++;
      void core.stop(slot, `function '${fn}' exceeded timeoutMs=${timeoutMs}`);
      return;
    }
    const suspends = pending.suspends ?? core.functions.get(fn)?.suspends === true;
    // An aborted call's deadline has not passed, so its worker would still start it: it is told
    // instead, and its answer — the cancel, or the result of a call that got there first —
    // settles the caller.
    if (suspends || pending.aborted !== undefined) {
      // Suspended, queued, or finished with its result on the way: the worker cancels it (a
      // suspended guest never runs again), drops it, or ignores the cancel. The caller is
      // answered by the worker's reply, so that nothing the call does lands after its
      // timeout was reported — or, if the worker is too busy to reply, after a short grace.
      if (pending.cancelBy === undefined) {
        pending.cancelBy = now + CANCEL_GRACE_MS;
        core.post(slot, { type: 'cancel', id, error: lateError(pending, 'cancelled by its worker').toWire() });
        Atomics.add(slot.control, Control.CANCELS, 1);
      } else if (now >= pending.cancelBy) {
        core.fail(pending, lateError(pending, 'its worker was too busy to cancel it'));
      }
    } else if (pending.position >= started) {
      // The worker drops it unstarted: the deadline travels with the request.
      core.fail(pending, timeoutError(pending, "still waiting in its worker's queue", false));
    }
    // A started call of a module that cannot suspend has finished; its result is on the way.
  }
}

/**
 * cpuLimitMs: stops the call on the worker's CPU once an upper bound on its CPU (its finished
 * slices plus the wall time of the running one, see worker/meter.ts) passes its limit; the
 * worker reports the exact figure with E_CPU_LIMIT.
 */
function sweepCpu(core: PoolCore, slot: Slot, running: number): void {
  const pending = slot.inflight.get(running);
  if (pending === undefined || pending.settled || pending.cpuStopped === true) return;
  const limit = core.functions.get(pending.request.fn)?.cpuLimitMs;
  if (limit === undefined) return;
  const bound = cpuBound(slot.interrupt, running);
  if (bound === undefined || bound <= limit * 1000) return;
  pending.cpuStopped = true;
  stopForCpu(slot.interrupt, running);
}
