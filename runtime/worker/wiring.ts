/**
 * Worker thread. Sets the worker up and routes its messages: reads WorkerData, connects the
 * capabilities (their RPC clients to the main thread, the kernel line, chain, comm, WASI),
 * builds the {@link InstanceCache}, the {@link Executor} and the {@link IdleLoop}, and handles
 * every message of runtime/protocol.ts (register, boot, invoke, cancel, comm, replies, …).
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { ErrorCode, toWire } from '../errors.js';
import { configureState } from '../capabilities/state/guest.js';
import { configureKernels } from '../capabilities/kernels/guest.js';
import { KernelLine } from '../capabilities/kernels/port.js';
import type { KernelsApi } from '../capabilities/kernels/api.js';
import type { StateApi } from '../capabilities/state/api.js';
import { RpcClient, unknownMessage } from '../rpc.js';
import { wake } from '../wake.js';
import { ownedBuffers } from '../transfer.js';
import { OutcomeLog } from '../outcome-log.js';
import { configureChain } from '../capabilities/chain/guest.js';
import { configureComm } from '../capabilities/comm/guest.js';
import { configureWasi, sharedFileBudget } from '../capabilities/wasi/guest.js';
import { loadCapabilities } from '../capabilities/guest.js';
import { Mailboxes } from './mailbox.js';
import { setLockHolder } from '../../state/key-state.js';
import { Control, wallClock, type FromWorker, type FunctionSpec, type InvokeRequest, type ToWorker, type WorkerData } from '../protocol.js';
import { wrapWatchCell } from './deadline-watch.js';
import { wrapInterrupt } from './interrupt.js';
import { DirtyMap } from './dirty-map.js';
import { GuestInstance, restoredState, workerImports, type InstanceEnv } from './instance.js';
import { startUpId, type DataSegment } from '../snapshot/layout.js';
import { InstanceCache } from './instance-cache.js';
import { ChainCalls } from './chains.js';
import { Executor } from './executor.js';
import { IdleLoop } from './idle-loop.js';

/** Sets up this worker thread and starts serving the pool; resolves once it has said `ready`. */
export async function startWorker(): Promise<void> {
  const data = workerData as WorkerData;
  setLockHolder(data.lockHolder);
  const port = parentPort!;
  const control = new Int32Array(data.control);
  const dirty = new DirtyMap();
  const interrupt = wrapInterrupt(data.interrupt);
  const cache = new InstanceCache(data, control, dirty);

  /** Requests to the capabilities' main-thread services (runtime/rpc.ts), answered by `reply` messages. */
  const stateRpc = new RpcClient<StateApi>((id, request) =>
    port.postMessage({ type: 'call', id, capability: 'state', ...request } satisfies FromWorker),
  );
  // A kernel call's arrays are fresh copies of guest memory: moved to the main thread, not copied.
  // (Only a registered kernel's CPU version runs there; the others go to the kernel thread.)
  const kernelsRpc = new RpcClient<KernelsApi>((id, request) =>
    port.postMessage({ type: 'call', id, capability: 'kernels', ...request } satisfies FromWorker, ownedBuffers(request.args)),
  );
  const rpcs = { state: stateRpc, kernels: kernelsRpc };
  /** Guests' kernel calls go straight to the kernel thread over a line of this worker's own. */
  const kernelLine = new KernelLine(kernelsRpc);

  const idle: IdleLoop = new IdleLoop(control, data.spinMicros, {
    drain,
    processing: () => executor.processing,
    queued: () => executor.queued,
    suspended: () => executor.suspended.size,
    awaitingReplies: () => stateRpc.pending + kernelsRpc.pending + kernelLine.pending,
    prewarmOne: () => cache.prewarmOne((fn, message) => executor.log(fn, message)),
    upkeep: () => {
      cache.expireIdle();
      executor.flush();
    },
  });
  // A caller resumes in a promise reaction: the event loop must get a turn.
  const chains = new ChainCalls(data, () => (idle.needsEventLoop = true));
  const executor: Executor = new Executor({
    port,
    control,
    outcomeLog: new OutcomeLog(data.outcomes),
    interrupt,
    watch: wrapWatchCell(data.watch),
    cache,
    chains,
    drain,
    scheduleIdle: () => idle.schedule(),
  });

  configureState(stateRpc);
  configureKernels(kernelLine);
  configureChain((fn, input, parent, parentDeadline, budget) => {
    const call = chains.create(fn, budget);
    if (input.byteLength > data.maxInputBytes) {
      const error = `${ErrorCode.INPUT_TOO_LARGE}: input to '${fn}' is ${input.byteLength} bytes, above maxInputBytes=${data.maxInputBytes}`;
      chains.settle(call, { error: { code: ErrorCode.INPUT_TOO_LARGE, message: error, details: {} } });
      return call;
    }
    // Run it here when nothing else waits on this worker: a call and its answer then never
    // leave the thread (the caller is suspended meanwhile, so the worker is free). Otherwise —
    // a fan-out's second call onwards — the pool spreads it over the workers.
    const entry = cache.get(fn);
    if (entry !== undefined && !executor.queued && cache.takeSlot(entry)) {
      const id = chains.trackLocal(call);
      const timeoutMs = entry.spec.timeoutMs;
      // A callee gets no longer than its caller has left.
      const deadline = Math.min(wallClock() + timeoutMs, parentDeadline);
      const request: InvokeRequest = { id, fn, deadline, timeoutMs, parent, local: true };
      if (input.byteLength > 0) request.input = input;
      port.postMessage({
        type: 'chainLocal',
        id,
        fn,
        parent,
        deadline: request.deadline,
        timeoutMs,
        suspends: entry.spec.suspends,
      } satisfies FromWorker);
      executor.enqueueSoon(request);
      return call;
    }
    const callId = chains.trackRemote(call);
    port.postMessage({ type: 'chain', callId, fn, input, parent } satisfies FromWorker, [input.buffer as ArrayBuffer]);
    return call;
  });

  const mailboxes = new Mailboxes();
  /** Direct channels to the other workers (see the `peer` message). */
  const peers = new Map<number, { port: MessagePort; control: Int32Array }>();
  configureComm({
    send: (group, to, message) => {
      const target = group.workers[to]!;
      if (target === data.index) {
        // A waiting receive resumes in a promise reaction: the event loop must get a turn.
        idle.needsEventLoop = true;
        mailboxes.deliver(group.id, to, group.rank, message);
        return;
      }
      const peer = peers.get(target);
      const comm = { type: 'comm', group: group.id, from: group.rank, to, data: message } as const;
      if (peer === undefined) {
        port.postMessage(comm satisfies FromWorker);
        return;
      }
      peer.port.postMessage(comm satisfies ToWorker);
      wake(peer.control);
    },
    receive: (group, rank, from) => mailboxes.receive(group, rank, from),
    maxMessageBytes: data.maxMessageBytes,
    maxQueuedMessageBytes: data.maxQueuedMessageBytes,
  });

  configureWasi(sharedFileBudget(new Int32Array(data.wasiFileCounts), data.lockHolder));
  await loadCapabilities();
  const host = workerImports(executor.hooks);

  function newEnv(fn: string): InstanceEnv {
    return {
      limits: { maxOutputBytes: data.maxOutputBytes, maxLogBytes: data.maxLogBytes },
      dirty,
      log: (message) => executor.log(fn, message),
      host,
      admit: (name) => cache.admit(name),
      onDispose: () => cache.countOut(),
      interrupt,
    };
  }

  function register(spec: FunctionSpec, seq: number): void {
    const entry = cache.add(spec, () => ({ ...newEnv(spec.name), restored: restoredState(spec, dirty) }));
    // A replacement worker learns already registered functions lazily: its first call
    // restores an instance under that call's own timeout.
    if (seq === 0) return;
    let reply: FromWorker = { type: 'registered', seq };
    Atomics.store(control, Control.REGISTERING, seq);
    try {
      // One instance up front proves the snapshot restores here and leaves it warm.
      cache.release(entry, cache.newInstance(entry));
    } catch (err) {
      reply = { type: 'registered', seq, error: toWire(err, ErrorCode.INSTANTIATE_FAILED) };
    } finally {
      Atomics.store(control, Control.REGISTERING, 0);
    }
    executor.flush();
    port.postMessage(reply);
  }

  /** Runs start-up code and init() once, under Control.REGISTERING, and answers with the snapshot. */
  function boot(spec: FunctionSpec, segments: DataSegment[], seq: number): void {
    let reply: FromWorker;
    Atomics.store(control, Control.REGISTERING, seq);
    try {
      const instance = GuestInstance.boot(spec, segments, newEnv(spec.name), startUpId(seq));
      const snapshot = instance.capture();
      instance.dispose();
      reply = { type: 'booted', seq, snapshot };
    } catch (err) {
      reply = { type: 'booted', seq, error: toWire(err, ErrorCode.INSTANTIATE_FAILED) };
    } finally {
      Atomics.store(control, Control.REGISTERING, 0);
    }
    executor.flush();
    port.postMessage(reply);
  }

  function handle(message: ToWorker): void {
    switch (message.type) {
      case 'invoke':
        executor.enqueue(message.batch);
        break;
      case 'register':
        register(message.spec, message.seq);
        break;
      case 'boot':
        boot(message.spec, message.segments, message.seq);
        break;
      case 'prewarm':
        cache.prewarm(message.fn, message.count);
        break;
      case 'unregister':
        cache.unregister(message.name);
        break;
      case 'comm':
        idle.needsEventLoop = true;
        mailboxes.deliver(message.group, message.to, message.from, message.data);
        break;
      case 'commAbort':
        idle.needsEventLoop = true;
        mailboxes.abort(message.group, message.error);
        executor.abortGroup(message.group, message.error);
        break;
      case 'commEnd':
        mailboxes.end(message.group);
        break;
      case 'peer': {
        peers.get(message.index)?.port.close();
        const peerPort = message.port;
        peerPort.on('message', (m: ToWorker) => {
          handle(m);
          idle.schedule();
        });
        peerPort.unref();
        peers.set(message.index, { port: peerPort, control: new Int32Array(message.control) });
        break;
      }
      case 'chainResult':
        chains.answerRemote(message.callId, message);
        break;
      case 'reply':
        idle.needsEventLoop = true;
        rpcs[message.capability].settle(message);
        break;
      case 'cancel':
        idle.needsEventLoop = true;
        executor.cancel(message.id, message.error);
        break;
      default:
        unknownMessage(message);
    }
  }

  function drain(): boolean {
    let any = false;
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
      handle(m.message as ToWorker);
      any = true;
    }
    for (const peer of peers.values()) {
      for (let m = receiveMessageOnPort(peer.port); m !== undefined; m = receiveMessageOnPort(peer.port)) {
        handle(m.message as ToWorker);
        any = true;
      }
    }
    return any;
  }

  port.on('message', (message: ToWorker) => {
    handle(message);
    idle.schedule();
  });
  port.postMessage({ type: 'ready' } satisfies FromWorker);
  idle.schedule();
}
