/**
 * `nuvola bench serve`: what serving over HTTP costs, with autocannon on loopback (its load in a
 * worker thread of its own). Three servers in this process, measured in turn, the order
 * alternated each run, after one warm-up run each:
 * - nuvola: `POST /functions/empty/invoke` of the empty guest through `nuvola/serve`, metrics
 *   and tracing on (no OpenTelemetry SDK: the tracing is the API's no-op), `/metrics` scraped
 *   every second meanwhile;
 * - the same server with metrics and tracing off;
 * - a bare fastify server (same framework) answering the same route with the same bytes and
 *   headers, without nuvola.
 * Figures: requests/s and p99 latency, nuvola vs bare and on vs off (issue 22's goals: ≤ 15%
 * and ≤ 5%). Take final figures on a quiet machine: on a loaded one the spread says how much
 * the ratios can be trusted.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { buildGuest, createRuntime } from 'nuvola';
import { serve } from 'nuvola/serve';
import { figure, median, report, round, type BenchReport } from './harness.js';

export const SERVE_DEFAULTS = { runs: 5, durationS: 3, connections: 16, workers: 2 };

const guestDir = fileURLToPath(new URL('../../bench/guests/', import.meta.url));

/** What this bench reads of autocannon's result. */
interface Cannon {
  requests: { average: number };
  latency: { p99: number };
  non2xx: number;
  errors: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<Cannon>;

export async function benchServe(options: Partial<typeof SERVE_DEFAULTS> = {}): Promise<BenchReport> {
  const { runs, durationS, connections, workers } = { ...SERVE_DEFAULTS, ...options };
  // A development dependency, loaded on demand like the wasi bench's baseline.
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const rt = await createRuntime({ workers, logger: (e) => (e.level === 'warn' ? console.error(e.message) : undefined) });
  await rt.register('empty', await buildGuest(join(guestDir, 'empty.ts')));
  const on = await serve(rt, { port: 0, metrics: true, tracing: true, statusPage: false });
  const off = await serve(rt, { port: 0, metrics: false, tracing: false, statusPage: false });
  const bare = Fastify({ logger: false });
  bare.removeAllContentTypeParsers();
  bare.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
  bare.post('/functions/:name/invoke', async (req, reply) => {
    const started = performance.now();
    // The body read whole, as nuvola reads it.
    for await (const chunk of req.raw) void chunk;
    return reply
      .header('content-type', 'application/octet-stream')
      .header('nuvola-return-code', '0')
      .header('nuvola-cold', 'false')
      .header('nuvola-duration-ms', (performance.now() - started).toFixed(3))
      .send(Buffer.alloc(0));
  });
  await bare.listen({ port: 0, host: '127.0.0.1' });
  const bareAddress = bare.server.address();
  const bareUrl = `http://127.0.0.1:${typeof bareAddress === 'object' && bareAddress !== null ? bareAddress.port : 0}`;

  const sides = { on: on.url, off: off.url, bare: bareUrl } as const;
  type Side = keyof typeof sides;
  const rps: Record<Side, number[]> = { on: [], off: [], bare: [] };
  const p99: Record<Side, number[]> = { on: [], off: [], bare: [] };
  let failures = 0;
  const once = async (side: Side, seconds: number): Promise<Cannon> => {
    const scrape = side === 'on' ? setInterval(() => void fetch(`${on.url}/metrics`).then((r) => r.text()), 1000) : undefined;
    try {
      return await autocannon({
        url: `${sides[side]}/functions/empty/invoke`,
        method: 'POST',
        body: 'x',
        connections,
        duration: seconds,
        workers: 1,
      });
    } finally {
      clearInterval(scrape);
    }
  };
  try {
    for (const side of ['bare', 'off', 'on'] as const) await once(side, 1);
    for (let run = 0; run < runs; run++) {
      const order: Side[] = run % 2 === 0 ? ['bare', 'off', 'on'] : ['on', 'off', 'bare'];
      for (const side of order) {
        const r = await once(side, durationS);
        failures += r.non2xx + r.errors;
        rps[side].push(r.requests.average);
        p99[side].push(r.latency.p99);
      }
    }
  } finally {
    await on.close();
    await off.close();
    await bare.close();
    await rt.close();
  }
  const spread = (v: number[]): string => `${round(Math.min(...v), 1)}–${round(Math.max(...v), 1)}`;
  return report(
    'serve',
    runs,
    [
      figure('HTTP invoke of the empty guest, requests/s', 'req/s', 'higher', rps.on, 'bare fastify, same bytes', rps.bare),
      figure('HTTP invoke of the empty guest, p99 latency', 'ms', 'lower', p99.on, 'bare fastify, same bytes', p99.bare),
      figure('metrics + tracing on vs off, requests/s', 'req/s', 'higher', rps.on, 'metrics + tracing off', rps.off),
      figure('metrics + tracing on vs off, p99 latency', 'ms', 'lower', p99.on, 'metrics + tracing off', p99.off),
    ],
    [
      `autocannon on loopback (one worker thread), ${connections} connections, ${durationS} s per run, ${runs} runs per side after one 1 s warm-up each, order alternated; ${workers} nuvola workers.`,
      `req/s medians (spread): on ${round(median(rps.on))} (${spread(rps.on)}), off ${round(median(rps.off))} (${spread(rps.off)}), bare ${round(median(rps.bare))} (${spread(rps.bare)}).`,
      `p99 ms medians (spread): on ${median(p99.on)} (${spread(p99.on)}), off ${median(p99.off)} (${spread(p99.off)}), bare ${median(p99.bare)} (${spread(p99.bare)}).`,
      `'on': tracing through @opentelemetry/api with no SDK registered (the API's no-op) and /metrics scraped every second during the run.`,
      `non-2xx answers and errors over all runs: ${failures}.`,
    ],
  );
}
