/**
 * Main thread. A worker's requests to this thread: a guest's `chain.call` run as an
 * invocation of its own (or by a host handler) and answered to the calling worker, and a
 * capability's call (`call`, runtime/rpc.ts) answered by its main-thread service.
 */
import type { TransferListItem } from 'node:worker_threads';
import { ErrorCode, makeError, toWire, type NuvolaError } from './errors.js';
import { serve } from './rpc.js';
import { wallClock, type FromWorker, type HostServices, type ToWorker } from './protocol.js';
import type { CallLink, PoolCore, RawResult, Slot } from './pool-types.js';

/** What answering a worker's requests needs of the rest of the pool. */
export interface RequestHost extends PoolCore {
  readonly closed: boolean;
  /** Functions the runtime runs on this thread (host handlers): a guest's chain.call may name them. */
  readonly external:
    ((fn: string, input: Uint8Array, timeoutMs: number) => Promise<{ output: Uint8Array; returnCode: number }> | undefined) | undefined;
  /** The capabilities' main-thread services. */
  readonly services: HostServices;
  invoke(fn: string, input: Uint8Array, timeoutMs: number, link?: CallLink): Promise<RawResult>;
}

/** Answers a worker's request to a capability's main-thread service. */
export function serveCall(host: RequestHost, slot: Slot, message: Extract<FromWorker, { type: 'call' }>): void {
  const { id, capability } = message;
  const request = capability === 'state' ? serve(host.services.state, message) : serve(host.services.kernels, message);
  // Kernel calls hold no state: a lost worker's locks need not wait for them.
  if (capability === 'state') {
    slot.stateInflight.add(request);
    const done = (): void => void slot.stateInflight.delete(request);
    request.then(done, done);
  }
  request.then(
    (value) => host.post(slot, { type: 'reply', capability, id, value }, capability === 'kernels' ? movedKernelValue(value) : undefined),
    (err: unknown) =>
      host.post(slot, {
        type: 'reply',
        capability,
        id,
        error: toWire(err, capability === 'kernels' ? ErrorCode.HANDLER_FAILED : ErrorCode.STATE_UNAVAILABLE),
      }),
  );
}

/**
 * A guest's chain.call: runs the callee like any invocation (under its own timeout) and
 * answers the calling worker — unless that worker is gone, whose caller is gone with it.
 */
export function chain(host: RequestHost, slot: Slot, message: Extract<FromWorker, { type: 'chain' }>): void {
  const { callId, fn } = message;
  const answer = (reply: ToWorker, transfer?: ArrayBuffer[]): void => {
    if (host.slots[slot.index] === slot && !slot.dead && slot.stopReason === undefined) host.post(slot, reply, transfer);
  };
  const spec = host.functions.get(fn);
  const caller = slot.inflight.get(message.parent)?.request;
  if (host.closed) {
    answer({ type: 'chainResult', callId, error: makeError(ErrorCode.CLOSED, 'the runtime is closed').toWire() });
    return;
  }
  if (spec === undefined) {
    const external = host.external?.(fn, message.input, caller === undefined ? 0 : Math.max(1, Math.floor(caller.deadline - wallClock())));
    if (external !== undefined) {
      external.then(
        (raw) => {
          const output = raw.output.byteLength > 0 ? new Uint8Array(raw.output) : undefined;
          answer(
            { type: 'chainResult', callId, returnCode: raw.returnCode, ...(output ? { output } : {}) },
            output ? [output.buffer] : undefined,
          );
        },
        (err: unknown) => answer({ type: 'chainResult', callId, error: toWire(err, ErrorCode.HANDLER_FAILED) }),
      );
      return;
    }
    const error = makeError(ErrorCode.UNKNOWN_FUNCTION, `chain.call: no function named '${fn}' is registered`, { function: fn });
    answer({ type: 'chainResult', callId, error: error.toWire() });
    return;
  }
  // A callee gets no longer than its caller has left.
  const left = caller === undefined ? spec.timeoutMs : Math.max(1, Math.floor(caller.deadline - wallClock()));
  host.invoke(fn, message.input, Math.min(spec.timeoutMs, left), { parent: message.parent }).then(
    (raw) => {
      const output = raw.output.byteLength > 0 ? raw.output : undefined;
      answer(
        { type: 'chainResult', callId, returnCode: raw.returnCode, ...(output ? { output } : {}) },
        output ? [output.buffer as ArrayBuffer] : undefined,
      );
    },
    (err: NuvolaError) => answer({ type: 'chainResult', callId, error: err.toWire() }),
  );
}

/**
 * What of a kernel reply moves to the worker rather than being copied: a result array (this
 * reply's alone), or the ports of a line to the kernel thread.
 */
function movedKernelValue(value: unknown): TransferListItem[] | undefined {
  if (value instanceof Float32Array) return [value.buffer as ArrayBuffer];
  if (value !== null && typeof value === 'object' && 'port' in value && 'control' in value) {
    const { port, control } = value as { port: TransferListItem; control: TransferListItem };
    return [port, control];
  }
  return undefined;
}
