/**
 * Worker thread entry (its own build entry: dist/runtime/worker/entry.js). Keeps the
 * registered functions and their warm instances, runs the invocations the main thread sends,
 * and answers in batches. Speaks only the protocol in runtime/protocol.ts.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { ErrorCode, NuvolaError, RegistryError, type WireError } from '../errors.js';
import type { GuestContext } from '../host/context.js';
import {
  Control,
  type FromWorker,
  type FunctionSpec,
  type InvokeOutcome,
  type InvokeRequest,
  type ToWorker,
  type WorkerData,
  type WorkerLog,
} from '../protocol.js';
import { GuestInstance, type SuspendHooks } from './instance.js';

const data = workerData as WorkerData;
const port = parentPort!;
const control = new Int32Array(data.control);

interface FunctionEntry {
  spec: FunctionSpec;
  idle: GuestInstance[];
}

/** An invocation suspended inside a host import, waiting to resume. */
interface Suspended {
  settled: boolean;
}

const functions = new Map<string, FunctionEntry>();
const suspended = new Map<number, Suspended>();
let results: InvokeOutcome[] = [];
let logs: WorkerLog[] = [];
let flushScheduled = false;

const hooks: SuspendHooks = {
  suspended() {
    Atomics.store(control, Control.RUNNING, 0);
  },
  resumed(ctx: GuestContext) {
    Atomics.store(control, Control.RUNNING, ctx.invocationId);
  },
};

function flush(): void {
  flushScheduled = false;
  if (results.length === 0 && logs.length === 0) return;
  const batch = results;
  const message: FromWorker = { type: 'results', batch, logs };
  results = [];
  logs = [];
  const transfer = batch.flatMap((r) => ('output' in r && r.output.byteLength > 0 ? [r.output.buffer as ArrayBuffer] : []));
  port.postMessage(message, transfer);
}

function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flush);
}

function fail(id: number, error: WireError): void {
  results.push({ id, error });
}

function newInstance(entry: FunctionEntry): GuestInstance {
  const fn = entry.spec.name;
  return new GuestInstance(
    entry.spec,
    data.maxOutputBytes,
    (message) => {
      logs.push({ fn, message });
      scheduleFlush();
    },
    hooks,
  );
}

function release(entry: FunctionEntry, instance: GuestInstance): void {
  if (functions.get(entry.spec.name) === entry && entry.idle.length < data.maxIdleInstances) entry.idle.push(instance);
}

function run(request: InvokeRequest): void {
  Atomics.add(control, Control.STARTED, 1);
  const entry = functions.get(request.fn);
  if (entry === undefined) {
    fail(
      request.id,
      new RegistryError(ErrorCode.UNKNOWN_FUNCTION, `no function named '${request.fn}' is registered`, { function: request.fn }).toWire(),
    );
    return;
  }
  // From here on guest code may run (a cold start runs start-up code and init()), so the
  // pool must be able to see which invocation holds the CPU.
  Atomics.store(control, Control.RUNNING, request.id);
  let instance = entry.idle.pop();
  const cold = instance === undefined;
  try {
    instance ??= newInstance(entry);
  } catch (err) {
    Atomics.store(control, Control.RUNNING, 0);
    fail(request.id, (err as NuvolaError).toWire());
    return;
  }
  const inst = instance;
  try {
    const returned = inst.call(request.input, request.id);
    if (typeof returned === 'number') {
      results.push({ id: request.id, output: inst.finish(), returnCode: returned, cold });
      release(entry, inst);
      return;
    }
    const record: Suspended = { settled: false };
    suspended.set(request.id, record);
    returned
      .then(
        (returnCode) => {
          if (record.settled) return;
          results.push({ id: request.id, output: inst.finish(), returnCode, cold });
          release(entry, inst);
        },
        (err: unknown) => {
          if (record.settled) return;
          fail(request.id, inst.classify(err).toWire());
        },
      )
      .finally(() => {
        record.settled = true;
        suspended.delete(request.id);
        scheduleFlush();
        scheduleIdle();
      });
  } catch (err) {
    fail(request.id, inst.classify(err).toWire());
  } finally {
    Atomics.store(control, Control.RUNNING, 0);
  }
}

function register(spec: FunctionSpec, seq: number): void {
  const entry: FunctionEntry = { spec, idle: [] };
  let reply: FromWorker = { type: 'registered', seq };
  try {
    // One instance up front proves the module instantiates here and leaves it warm.
    entry.idle.push(newInstance(entry));
    functions.set(spec.name, entry);
  } catch (err) {
    reply = { type: 'registered', seq, error: (err as NuvolaError).toWire() };
  }
  port.postMessage(reply);
}

function handle(message: ToWorker): void {
  switch (message.type) {
    case 'invoke':
      for (const request of message.batch) run(request);
      flush();
      break;
    case 'register':
      register(message.spec, message.seq);
      break;
    case 'unregister':
      functions.delete(message.name);
      break;
    case 'cancel': {
      const record = suspended.get(message.id);
      if (record && !record.settled) {
        // The guest is parked in a host import; it is never resumed into a reply, and its
        // instance is not returned to the pool.
        record.settled = true;
        suspended.delete(message.id);
        fail(message.id, message.error);
        scheduleFlush();
      }
      break;
    }
  }
}

/** A CPU hint that this thread is spinning (`Atomics.pause`, V8 13.3+). */
const pause = (Atomics as unknown as { pause: () => void }).pause;

/** How long an idle worker blocks before giving its event loop a turn, in milliseconds. */
const IDLE_WAIT_MS = 50;
let idleScheduled = false;

function drain(): boolean {
  let any = false;
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    handle(m.message as ToWorker);
    any = true;
  }
  return any;
}

/**
 * While nothing is suspended, block on Control.SIGNAL instead of idling in the event loop;
 * return to the event loop as soon as an invocation suspends (its host call needs it) and
 * every IDLE_WAIT_MS anyway.
 */
function idle(): void {
  idleScheduled = false;
  for (;;) {
    drain();
    flush();
    if (suspended.size > 0) return;
    const seen = Atomics.load(control, Control.SIGNAL);
    Atomics.store(control, Control.IDLE, 1);
    // A message posted before IDLE was visible is already in the port: take it now.
    if (drain()) {
      Atomics.store(control, Control.IDLE, 0);
      continue;
    }
    // Spin briefly first: a caller awaiting one result usually sends the next call within a
    // main-thread round trip, and catching it here saves the futex wake-up.
    const spinUntil = performance.now() + data.spinMicros / 1000;
    while (Atomics.load(control, Control.SIGNAL) === seen && performance.now() < spinUntil) pause();
    if (Atomics.load(control, Control.SIGNAL) !== seen) {
      Atomics.store(control, Control.IDLE, 0);
      continue;
    }
    const woke = Atomics.wait(control, Control.SIGNAL, seen, IDLE_WAIT_MS);
    Atomics.store(control, Control.IDLE, 0);
    if (woke === 'timed-out') break;
  }
  scheduleIdle();
}

function scheduleIdle(): void {
  if (idleScheduled || suspended.size > 0) return;
  idleScheduled = true;
  setImmediate(idle);
}

port.on('message', (message: ToWorker) => {
  handle(message);
  scheduleIdle();
});
scheduleIdle();
