/**
 * Main thread. Traces through `@opentelemetry/api`: a span per invocation, child spans for the
 * calls it made with `chain.call` (from the runtime's own call records, `{ trace: true }`,
 * asked for only when the span records), the W3C `traceparent` of an HTTP request as the
 * parent. With no OpenTelemetry SDK registered the API's tracer hands out non-recording spans:
 * the call then runs exactly as `rt.invoke` (one span object made and ended, nothing else).
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import type { CallRecord, InvokeInput, InvokeOptions, InvokeResult, NuvolaError, Runtime } from '../runtime/index.js';

const tracer = trace.getTracer('nuvola');

/** HTTP headers as OpenTelemetry's propagator reads them. */
const headerGetter = {
  keys: (carrier: Record<string, string | string[] | undefined>): string[] => Object.keys(carrier),
  get: (carrier: Record<string, string | string[] | undefined>, key: string): string | string[] | undefined => carrier[key],
};

/** The context a request's `traceparent`/`tracestate` headers name (the active one when there are none or no propagator is set). */
export function contextFromHeaders(headers: Record<string, string | string[] | undefined>): Context {
  return propagation.extract(context.active(), headers, headerGetter);
}

/**
 * `rt.invoke(name, input, options)` in a span named `nuvola.invoke <shown>` under `parent`,
 * with the call's figures as attributes and a child span per chained call. `shown`: the name
 * the caller used (a server's public name for a versioned function).
 */
export async function invokeTraced(
  rt: Runtime,
  name: string,
  input: InvokeInput,
  options: InvokeOptions | undefined,
  parent: Context,
  shown: string = name,
): Promise<InvokeResult> {
  const span = tracer.startSpan(`nuvola.invoke ${shown}`, { kind: SpanKind.INTERNAL, attributes: { 'faas.invoked_name': shown } }, parent);
  if (!span.isRecording()) {
    span.end();
    return rt.invoke(name, input, options);
  }
  const startedAt = Date.now();
  try {
    const result = await rt.invoke(name, input, { ...options, trace: true });
    span.setAttributes({
      'nuvola.return_code': result.returnCode,
      'faas.coldstart': result.cold,
      'nuvola.worker': result.worker,
      'nuvola.worker_ms': result.workerMs,
      ...(result.host !== undefined ? { 'nuvola.host': result.host } : {}),
      ...usageAttributes(result),
    });
    if (result.calls !== undefined) chainSpans(span, parent, result.calls, startedAt);
    return result;
  } catch (err) {
    const e = err as NuvolaError;
    span.recordException(e);
    span.setAttribute('nuvola.error.code', String(e.code));
    span.setStatus({ code: SpanStatusCode.ERROR, message: `${e.code}: ${e.message}` });
    throw err;
  } finally {
    span.end();
  }
}

function usageAttributes(result: InvokeResult): Record<string, number> {
  const u = result.usage;
  if (u === undefined) return {};
  return {
    'nuvola.usage.cpu_ms': u.cpuMs,
    'nuvola.usage.peak_memory_bytes': u.peakMemoryBytes,
    'nuvola.usage.bytes_in': u.bytesIn,
    'nuvola.usage.bytes_out': u.bytesOut,
    'nuvola.usage.state_bytes_read': u.stateBytesRead,
    'nuvola.usage.state_bytes_written': u.stateBytesWritten,
    'nuvola.usage.state_pushed_bytes': u.statePushedBytes,
    'nuvola.usage.kernel_ms': u.kernelMs,
  };
}

/** A span per chained call, under its caller's span, at the times the runtime recorded (`startMs` after the root's start). */
function chainSpans(root: Span, parent: Context, records: readonly CallRecord[], rootStart: number): void {
  const spans = new Map<number, Span>();
  const rootRecord = records.find((r) => r.parent === undefined);
  if (rootRecord !== undefined) spans.set(rootRecord.id, root);
  // Records come in start order, so a caller's span exists before its callees'.
  for (const r of records) {
    if (r.parent === undefined) continue;
    const caller = spans.get(r.parent) ?? root;
    const start = rootStart + r.startMs;
    const span = tracer.startSpan(
      `nuvola.chain ${r.function}`,
      { kind: SpanKind.INTERNAL, startTime: start, attributes: { 'faas.invoked_name': r.function, 'nuvola.worker': r.worker } },
      trace.setSpan(parent, caller),
    );
    if (r.returnCode !== undefined) span.setAttribute('nuvola.return_code', r.returnCode);
    if (r.error !== undefined) {
      span.setAttribute('nuvola.error.code', r.error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: r.error });
    }
    span.end(start + r.durationMs);
    spans.set(r.id, span);
  }
}
