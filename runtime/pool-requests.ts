/**
 * Main thread. A worker's requests to this thread (`call` messages, runtime/rpc.ts): a
 * capability's call answered by its main-thread service — the runtime's (state, kernels) or
 * the pool's own: a guest's `chain.call` run as an invocation of its own (or by a host
 * handler), a chained call its worker runs itself, a group message routed on.
 */
import type { TransferListItem } from 'node:worker_threads';
import { ErrorCode, makeError, toWire, type NuvolaError } from './errors.js';
import { NOTICE, serve, unknownMessage, type Service } from './rpc.js';
import { wallClock, type FromWorker, type HostApis, type HostServices } from './protocol.js';
import type { ChainApi, ChainOutcome } from './capabilities/chain/api.js';
import type { CommApi } from './capabilities/comm/api.js';
import type { Adopted, CallLink, PoolCore, RawResult, Slot } from './pool-types.js';

/** What answering a worker's requests needs of the rest of the pool. */
export interface RequestHost extends PoolCore {
  readonly closed: boolean;
  /** Functions the runtime runs on this thread (host handlers): a guest's chain.call may name them. */
  readonly external:
    ((fn: string, input: Uint8Array, timeoutMs: number) => Promise<{ output: Uint8Array; returnCode: number }> | undefined) | undefined;
  /** The runtime's main-thread services. */
  readonly services: HostServices;
  /** Routes a rank's message (pool-groups.ts). */
  readonly comm: Service<CommApi>;
  invoke(fn: string, input: Uint8Array, timeoutMs: number, link?: CallLink, adopted?: Adopted): Promise<RawResult>;
}

type Call = Extract<FromWorker, { type: 'call' }>;

/** Carries out a worker's request and answers it (a notice: not). */
export function serveCall(host: RequestHost, slot: Slot, message: Call): void {
  const { id, capability } = message;
  const request = carryOut(host, slot, message);
  // A notice's failure has no one to go to: its service handles its own (a call's timeout, a message's group).
  if (id === NOTICE) {
    request.catch(() => undefined);
    return;
  }
  // State requests run under the worker's locks: a lost worker's locks wait for them.
  if (capability === 'state') {
    slot.stateInflight.add(request);
    const done = (): void => void slot.stateInflight.delete(request);
    request.then(done, done);
  }
  const post = (reply: Parameters<RequestHost['post']>[1], transfer?: readonly TransferListItem[]): void => {
    // A chained call's caller is gone with its worker.
    if (capability === 'chain' && !live(host, slot)) return;
    host.post(slot, reply, transfer);
  };
  request.then(
    (value) => post({ type: 'reply', capability, id, value }, moved(capability, value)),
    (err: unknown) =>
      post({
        type: 'reply',
        capability,
        id,
        error: toWire(err, capability === 'state' ? ErrorCode.STATE_UNAVAILABLE : ErrorCode.HANDLER_FAILED),
      }),
  );
}

function carryOut(host: RequestHost, slot: Slot, message: Call): Promise<unknown> {
  switch (message.capability) {
    case 'state':
      return serve(host.services.state, message);
    case 'kernels':
      return serve(host.services.kernels, message);
    case 'chain':
      return serve(chainService(host, slot), message);
    case 'comm':
      return serve(host.comm, message);
    default:
      return unknownMessage(message);
  }
}

function live(host: RequestHost, slot: Slot): boolean {
  return host.slots[slot.index] === slot && !slot.dead && slot.stopReason === undefined;
}

/** `chain` for the worker `slot`. */
function chainService(host: RequestHost, slot: Slot): Service<ChainApi> {
  return {
    call: (fn, input, parent) => chain(host, slot, fn, input, parent),
    ranHere: (id, fn, parent, deadline, timeoutMs, suspends) => {
      // Watched for timeouts, counted and traced; the worker answers the caller itself.
      host.invoke(fn, new Uint8Array(0), timeoutMs, { parent }, { slot, id, deadline, suspends }).catch(() => undefined);
    },
  };
}

/** A guest's chain.call: runs the callee like any invocation (under its own timeout, within its caller's). */
function chain(host: RequestHost, slot: Slot, fn: string, input: Uint8Array, parent: number): Promise<ChainOutcome> {
  const spec = host.functions.get(fn);
  const caller = slot.inflight.get(parent)?.request;
  if (host.closed) return Promise.resolve({ error: makeError(ErrorCode.CLOSED, 'the runtime is closed').toWire() });
  if (spec === undefined) {
    const external = host.external?.(fn, input, caller === undefined ? 0 : Math.max(1, Math.floor(caller.deadline - wallClock())));
    if (external !== undefined) {
      return external.then(
        (raw) => outcome(raw.returnCode, raw.output.byteLength > 0 ? new Uint8Array(raw.output) : undefined),
        (err: unknown) => ({ error: toWire(err, ErrorCode.HANDLER_FAILED) }),
      );
    }
    const error = makeError(ErrorCode.UNKNOWN_FUNCTION, `chain.call: no function named '${fn}' is registered`, { function: fn });
    return Promise.resolve({ error: error.toWire() });
  }
  // A callee gets no longer than its caller has left.
  const left = caller === undefined ? spec.timeoutMs : Math.max(1, Math.floor(caller.deadline - wallClock()));
  return host.invoke(fn, input, Math.min(spec.timeoutMs, left), { parent }).then(
    (raw) => outcome(raw.returnCode, raw.output.byteLength > 0 ? raw.output : undefined),
    (err: NuvolaError) => ({ error: err.toWire() }),
  );
}

function outcome(returnCode: number, output: Uint8Array | undefined): ChainOutcome {
  return output === undefined ? { returnCode } : { returnCode, output };
}

/**
 * What of a reply moves to the worker rather than being copied: a kernel's result array (this
 * reply's alone) or the ports of a line to the kernel thread; a chained call's output.
 */
function moved(capability: keyof HostApis, value: unknown): TransferListItem[] | undefined {
  if (capability === 'chain') {
    const output = (value as ChainOutcome).output;
    return output === undefined ? undefined : [output.buffer as ArrayBuffer];
  }
  if (capability !== 'kernels') return undefined;
  if (value instanceof Float32Array) return [value.buffer as ArrayBuffer];
  if (value !== null && typeof value === 'object' && 'port' in value && 'control' in value) {
    const { port, control } = value as { port: TransferListItem; control: TransferListItem };
    return [port, control];
  }
  return undefined;
}
