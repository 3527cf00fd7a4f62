/**
 * Worker thread. Sets the worker up and routes its messages: reads WorkerData, connects the
 * capabilities (their RPC clients to the main thread, the kernel line, chain, comm, WASI),
 * builds the {@link InstanceCache}, the {@link Executor} and the {@link IdleLoop}, and handles
 * every message of runtime/protocol.ts (register, boot, invoke, cancel, comm, replies, …).
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { ErrorCode, toWire } from '../errors.js';
import type { StateDeps } from '../capabilities/state/guest.js';
import type { RegionDeps } from '../capabilities/region/guest.js';
import type { KernelsDeps } from '../capabilities/kernels/guest.js';
import type { ChainDeps } from '../capabilities/chain/guest.js';
import type { CommDeps } from '../capabilities/comm/guest.js';
import type { WasiDeps } from '../capabilities/wasi/guest.js';
import { sharedFileBudget } from '../capabilities/wasi/fd-table.js';
import { WASI_MODULE } from '../capabilities/wasi/manifest.js';
import { KernelLine } from '../capabilities/kernels/port.js';
import * as abi from '../../guest/sdk/nuvola/abi.js';
import type { KernelsApi } from '../capabilities/kernels/api.js';
import type { StateApi } from '../capabilities/state/api.js';
import type { ChainApi } from '../capabilities/chain/api.js';
import type { CommApi } from '../capabilities/comm/api.js';
import { RpcClient, unknownMessage, type Reply } from '../rpc.js';
import { wake } from '../wake.js';
import { ownedBuffers } from '../transfer.js';
import { OutcomeLog } from '../outcome-log.js';
import { loadCapabilities } from '../capabilities/guest.js';
import { Mailboxes, MessageBuffers } from './mailbox.js';
import { setLockHolder } from '../../state/key-state.js';
import {
  Control,
  wallClock,
  type FromWorker,
  type FunctionSpec,
  type HostApis,
  type InvokeRequest,
  type ToWorker,
  type WorkerData,
} from '../protocol.js';
import { wrapWatchCell } from './deadline-watch.js';
import { wrapInterrupt } from './interrupt.js';
import { DirtyMap } from './dirty-map.js';
import { addLoadedImports, GuestInstance, restoredState, workerImports, type InstanceEnv } from './instance.js';
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

  /**
   * Messages that came while the capabilities a new module imports were loading: handled
   * after it, in their order. `loading` is set meanwhile (the idle loop then leaves the event
   * loop free for the load).
   */
  const held: ToWorker[] = [];
  let loading: Promise<void> | undefined;

  /** Requests to the capabilities' main-thread services (runtime/rpc.ts), answered by `reply` messages. */
  const stateRpc = new RpcClient<StateApi>((id, request) =>
    port.postMessage({ type: 'call', id, capability: 'state', ...request } satisfies FromWorker),
  );
  // A kernel call's arrays are fresh copies of guest memory: moved to the main thread, not copied.
  // (Only a registered kernel's CPU version runs there; the others go to the kernel thread.)
  const kernelsRpc = new RpcClient<KernelsApi>((id, request) =>
    port.postMessage({ type: 'call', id, capability: 'kernels', ...request } satisfies FromWorker, ownedBuffers(request.args)),
  );
  // A chained call's input is a fresh copy of guest memory: moved too.
  const chainRpc = new RpcClient<ChainApi>((id, request) =>
    port.postMessage({ type: 'call', id, capability: 'chain', ...request } satisfies FromWorker, ownedBuffers(request.args)),
  );
  // A group message's SharedArrayBuffer is shared, never moved.
  const commRpc = new RpcClient<CommApi>((id, request) =>
    port.postMessage({ type: 'call', id, capability: 'comm', ...request } satisfies FromWorker),
  );
  const rpcs: Record<keyof HostApis, { settle(reply: Reply): void }> = {
    state: stateRpc,
    kernels: kernelsRpc,
    chain: chainRpc,
    comm: commRpc,
  };
  /** Guests' kernel calls go straight to the kernel thread over a line of this worker's own. */
  const kernelLine = new KernelLine(kernelsRpc);

  const idle: IdleLoop = new IdleLoop(control, data.spinMicros, {
    drain,
    processing: () => executor.processing,
    queued: () => executor.queued,
    suspended: () => executor.suspended.size,
    awaitingReplies: () => stateRpc.pending + kernelsRpc.pending + kernelLine.pending + (loading === undefined ? 0 : 1),
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

  const chain: ChainDeps = (fn, input, parent, parentDeadline, budget) => {
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
      chainRpc.notify('ranHere', id, fn, parent, request.deadline, timeoutMs, entry.spec.suspends);
      executor.enqueueSoon(request);
      return call;
    }
    chainRpc.call('call', fn, input, parent).then(
      (outcome) => chains.settle(call, outcome),
      (err: unknown) => chains.settle(call, { error: toWire(err, ErrorCode.HANDLER_FAILED) }),
    );
    return call;
  };

  const mailboxes = new Mailboxes();
  /** Direct channels to the other workers (see the `peer` message). */
  const peers = new Map<number, { port: MessagePort; control: Int32Array }>();
  const buffers = new MessageBuffers();
  const comm: CommDeps = {
    send: (group, to, message) => {
      const target = group.workers[to]!;
      if (target === data.index) {
        // A waiting receive resumes in a promise reaction: the event loop must get a turn.
        idle.needsEventLoop = true;
        mailboxes.deliver(group.id, to, group.rank, message);
        return;
      }
      const peer = peers.get(target);
      if (peer === undefined) {
        commRpc.notify('send', group.id, group.rank, to, message);
        return;
      }
      peer.port.postMessage({ type: 'comm', group: group.id, from: group.rank, to, data: message } satisfies ToWorker);
      wake(peer.control);
    },
    receive: (group, rank, from) => mailboxes.receive(group, rank, from),
    maxMessageBytes: data.maxMessageBytes,
    maxQueuedMessageBytes: data.maxQueuedMessageBytes,
    buffer: (size) => buffers.take(size),
    recycle: (message) => buffers.recycle(message),
  };

  /** What this worker gives each capability, by its import module (see `bind` in capabilities/capability.ts). */
  const deps: {
    [abi.MODULE_STATE]: StateDeps;
    [abi.MODULE_REGION]: RegionDeps;
    [abi.MODULE_KERNELS]: KernelsDeps;
    [abi.MODULE_CHAIN]: ChainDeps;
    [abi.MODULE_COMM]: CommDeps;
    [WASI_MODULE]: WasiDeps;
  } = {
    [abi.MODULE_STATE]: stateRpc,
    [abi.MODULE_REGION]: stateRpc,
    [abi.MODULE_KERNELS]: kernelLine,
    [abi.MODULE_CHAIN]: chain,
    [abi.MODULE_COMM]: comm,
    [WASI_MODULE]: sharedFileBudget(new Int32Array(data.wasiFileCounts), data.lockHolder),
  };
  // Capabilities are loaded as the modules that import them arrive (see `held` below).
  const host = workerImports(executor.hooks, deps);

  function newEnv(fn: string): InstanceEnv {
    return {
      limits: { maxOutputBytes: data.maxOutputBytes, maxLogBytes: data.maxLogBytes },
      dirty,
      log: (message) => executor.log(fn, message),
      host,
      admit: (name) => cache.admit(name),
      onDispose: () => cache.countOut(),
      interrupt,
      region: data.region,
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
    if (loading !== undefined) {
      held.push(message);
      return;
    }
    if (message.type === 'register' || message.type === 'boot') {
      const load = loadCapabilities(message.spec.module);
      if (load !== undefined) {
        held.push(message);
        // A failed load leaves the capability out: instantiating the module then fails, reported to the pool.
        const resume = (): void => {
          loading = undefined;
          addLoadedImports(host);
          for (const m of held.splice(0)) handle(m);
          idle.schedule();
        };
        loading = load.then(resume, (err: unknown) => {
          executor.log(message.spec.name, `nuvola: loading the host imports of '${message.spec.name}' failed: ${String(err)}`);
          resume();
        });
        return;
      }
    }
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
