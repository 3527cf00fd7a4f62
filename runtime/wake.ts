/**
 * Any thread. Waking a worker after posting it a message: the one protocol both the pool and a
 * worker sending to a peer (a group rank's message) follow. A worker with nothing to do blocks
 * on `Control.SIGNAL` with `Control.IDLE` set (the idle loop in `worker/idle-loop.ts`); every post
 * bumps SIGNAL, and only a worker marked idle needs the (costly) notify.
 */
import { Control, clockMicros } from './protocol.js';

/** Tells the worker whose control words are `control` that a message was posted to it. */
export function wake(control: Int32Array): void {
  Atomics.add(control, Control.SIGNAL, 1);
  if (Atomics.load(control, Control.IDLE) === 1) {
    // The worker measures how long the wake-up took, to decide whether spinning pays.
    Atomics.store(control, Control.NOTIFIED_AT, clockMicros());
    Atomics.notify(control, Control.SIGNAL, 1);
  }
}
