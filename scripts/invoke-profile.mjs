// Where the main thread's time goes at 256 calls in flight (`bench invoke`'s throughput run: the
// empty guest, 2 workers), for one build: calls/s, the main thread's CPU per call
// (process.threadCpuUsage), calls per message each way, and — with --profile — a CPU profile of
// the main thread taken during the measured runs only, summarised as self time per call by
// function. Run it alternately on two checkouts (both built) to compare them:
//
//   node scripts/invoke-profile.mjs --root ../base --runs 4 --calls 40000 --profile base.cpuprofile
//   node scripts/invoke-profile.mjs --root .       --runs 4 --calls 40000 --profile this.cpuprofile
//   node scripts/invoke-profile.mjs --compare base.cpuprofile this.cpuprofile
//
// CPU per call and calls per message say more than calls/s on a shared machine: calls/s swings
// with how the 256 calls happen to be split into messages (see bench/README.md).
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};

/** Self time per call, by function (name and file; line numbers differ between builds). */
function selfTimes(file, calls) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const { functionName, url } = byId.get(profile.samples[i]).callFrame;
    const key = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(dist|node_modules)\//, '')}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  for (const [key, micros] of self) self.set(key, (micros * 1000) / (calls ?? profile.calls));
  return self;
}

const compare = args.indexOf('--compare');
if (compare >= 0) {
  const [a, b] = [args[compare + 1], args[compare + 2]].map((f) => {
    const calls = JSON.parse(readFileSync(f, 'utf8')).calls;
    return selfTimes(f, calls);
  });
  const keys = [...new Set([...a.keys(), ...b.keys()])].filter((k) => !k.startsWith('(idle)'));
  const total = (m) => keys.reduce((n, k) => n + (m.get(k) ?? 0), 0);
  console.log(`ns of main-thread time per call (idle left out): ${total(a).toFixed(0)} → ${total(b).toFixed(0)}`);
  console.log('| function | first | second | difference |\n| --- | --- | --- | --- |');
  keys.sort((x, y) => Math.max(b.get(y) ?? 0, a.get(y) ?? 0) - Math.max(b.get(x) ?? 0, a.get(x) ?? 0));
  for (const k of keys.slice(0, Number(arg('top', '30')))) {
    const [x, y] = [a.get(k) ?? 0, b.get(k) ?? 0];
    console.log(`| ${k} | ${x.toFixed(0)} | ${y.toFixed(0)} | ${(y - x).toFixed(0)} |`);
  }
  process.exit(0);
}

const root = resolve(arg('root', '.'));
const runs = Number(arg('runs', '4'));
const calls = Number(arg('calls', '40000'));
const out = arg('profile', undefined);
const { createRuntime, buildGuest } = await import(pathToFileURL(join(root, 'dist/runtime/index.js')).href);
const rt = await createRuntime({ workers: 2, logger: () => {} });
await rt.register('empty', await buildGuest(join(root, 'bench/guests/empty.ts')));
const input = new Uint8Array(0);
// White-box: count the messages each way (the pool's slots are not public API).
let back = 0;
let sent = 0;
for (const slot of rt.pool.slots) {
  slot.worker.on('message', (m) => {
    if (m.type === 'results') back++;
  });
  const post = slot.worker.postMessage.bind(slot.worker);
  slot.worker.postMessage = (m, transfer) => {
    if (m.type === 'invoke') sent++;
    return post(m, transfer);
  };
}
async function run(total) {
  let issued = 0;
  const lane = async () => {
    while (issued < total) {
      issued++;
      await rt.invoke('empty', input);
    }
  };
  const [m0, p0, cpu0, t0] = [back, sent, process.threadCpuUsage(), performance.now()];
  await Promise.all(Array.from({ length: 256 }, lane));
  const cpu = process.threadCpuUsage(cpu0);
  const s = (performance.now() - t0) / 1000;
  return { perSecond: total / s, cpuMicros: (cpu.user + cpu.system) / total, back: total / (back - m0), sent: total / (sent - p0) };
}
await run(10_000);
let session;
if (out !== undefined) {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 50 });
  await session.post('Profiler.start');
}
const load = loadavg()[0];
const results = [];
for (let i = 0; i < runs; i++) results.push(await run(calls));
if (session !== undefined) {
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(out, JSON.stringify({ ...profile, calls: runs * calls }));
}
await rt.close();
const median = (key) => {
  const v = results.map((r) => r[key]).sort((x, y) => x - y);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
console.log(
  `${root}: ${Math.round(median('perSecond'))} calls/s (runs ${results.map((r) => Math.round(r.perSecond)).join(' ')}), ` +
    `main thread ${median('cpuMicros').toFixed(2)} µs CPU per call, ${median('sent').toFixed(1)} calls per message out, ` +
    `${median('back').toFixed(1)} back; load ${load.toFixed(2)} → ${loadavg()[0].toFixed(2)}`,
);
