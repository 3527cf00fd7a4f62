// Traces of `nuvola/serve` through @opentelemetry/api: with no SDK registered, no span records
// and the call runs untraced; with one (sdk-trace-base, an in-memory exporter, the W3C
// propagator), an HTTP invoke with a `traceparent` gives a span under that parent, with a child
// span per chained call nested as the calls were.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createRuntime, type Runtime } from 'nuvola';
import { invokeTraced, serve, type NuvolaServer } from 'nuvola/serve';
import { guestBytes, text } from './helpers.js';

let rt: Runtime;
let server: NuvolaServer;

beforeAll(async () => {
  rt = await createRuntime({ workers: 2, logger: () => {} });
  server = await serve(rt, { port: 0 });
  await server.publish('proxy', guestBytes('chain_proxy'));
  await server.publish('say', guestBytes('chain_say'));
  await server.publish('trap', guestBytes('core_unreachable'));
});
afterAll(async () => {
  trace.disable();
  propagation.disable();
  await server?.close();
  await rt?.close();
});

const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;

describe('tracing', () => {
  it('without an SDK: no span records, the call is not traced by the runtime', async () => {
    const result = await invokeTraced(rt, 'proxy', 'say hi', undefined, context.active());
    expect(text(result.output)).toBe('0 hi');
    expect(result.calls).toBeUndefined();
  });

  it('with an SDK: a span per invocation under the HTTP traceparent, a child per chained call', async () => {
    const exporter = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());

    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentId = '00f067aa0ba902b7';
    const res = await fetch(`${server.url}/functions/proxy/invoke`, {
      method: 'POST',
      body: 'proxy say hi',
      headers: { traceparent: `00-${traceId}-${parentId}-01` },
    });
    expect(await res.text()).toBe('0 0 hi');
    const spans = exporter.getFinishedSpans();
    const root = spans.find((s) => s.name === 'nuvola.invoke proxy')!;
    expect(root).toBeDefined();
    expect(root.spanContext().traceId).toBe(traceId);
    expect(parentOf(root)).toBe(parentId);
    expect(root.attributes['nuvola.return_code']).toBe(0);
    expect(root.attributes['faas.coldstart']).toBeTypeOf('boolean');
    const inner = spans.find((s) => s.name === 'nuvola.chain proxy')!;
    const leaf = spans.find((s) => s.name === 'nuvola.chain say')!;
    expect(parentOf(inner)).toBe(root.spanContext().spanId);
    expect(parentOf(leaf)).toBe(inner.spanContext().spanId);
    for (const s of [inner, leaf]) expect(s.spanContext().traceId).toBe(traceId);
    // The callee ran inside its caller's time.
    const ms = (t: [number, number]): number => t[0] * 1000 + t[1] / 1e6;
    expect(ms(leaf.startTime)).toBeGreaterThanOrEqual(ms(inner.startTime) - 1);
    expect(ms(leaf.endTime)).toBeLessThanOrEqual(ms(inner.endTime) + 1);

    exporter.reset();
    const failed = await fetch(`${server.url}/functions/trap/invoke`, { method: 'POST', body: '' });
    expect(failed.status).toBe(502);
    const span = exporter.getFinishedSpans().find((s) => s.name === 'nuvola.invoke trap')!;
    expect(span.status.code).toBe(2);
    expect(span.attributes['nuvola.error.code']).toBe('E_GUEST_TRAP');
    // A new trace when the request names none.
    expect(span.spanContext().traceId).not.toBe(traceId);
  });
});
