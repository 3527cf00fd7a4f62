// Preloaded (`--import`) by start-cost.mjs into every thread. In a worker thread it records,
// when the worker posts `ready` and when it posts its first `results`, the thread's own CPU
// time since it started (process.threadCpuUsage: what the start cost, unlike wall time, barely
// moves with the machine's load) and its wall time since this hook ran, and appends them as
// one JSON line to $NUVOLA_START_COST_OUT.
import { isMainThread, parentPort } from 'node:worker_threads';
import { appendFileSync } from 'node:fs';

const out = process.env['NUVOLA_START_COST_OUT'];
if (!isMainThread && parentPort !== null && out !== undefined) {
  const post = parentPort.postMessage.bind(parentPort);
  const marks = { hookMs: performance.now() };
  parentPort.postMessage = (message, transfer) => {
    const type = message?.type;
    if ((type === 'ready' || type === 'results') && marks[type] === undefined) {
      const cpu = process.threadCpuUsage();
      marks[type] = { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - marks.hookMs };
      if (type === 'results') appendFileSync(out, `${JSON.stringify(marks)}\n`);
    }
    return post(message, transfer);
  };
}
