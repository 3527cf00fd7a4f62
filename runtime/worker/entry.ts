/**
 * Worker thread entry (its own build entry: dist/runtime/worker/entry.js, which the pool
 * starts). Keeps the registered functions and their warm instances, runs the invocations the
 * main thread sends, and answers in batches; speaks only the protocol in runtime/protocol.ts.
 *
 * The parts: wiring.ts (set-up and message routing), executor.ts (running calls, outcomes),
 * instance-cache.ts (warm instances, spare memories, idle expiry), idle-loop.ts (waiting for
 * work), chains.ts (chained calls awaited here).
 */
import { startWorker } from './wiring.js';

await startWorker();
