/**
 * Main thread. `serve(rt, options)`: a fastify server in front of a runtime — upload,
 * describe, remove and invoke functions over HTTP, `/healthz` and `/readyz`, `/metrics`
 * (Prometheus text from `rt.metrics()`), the status page, and the cron and Redis Streams
 * triggers. Every refusal is a coded error answered as `{ code, message, details }` with the
 * status of http-errors.ts; a slow or vanished client costs the others nothing (header and
 * request time-outs; a call whose client went away is cancelled).
 *
 * Why it is this long: the routes share one access check, one body reader and one error
 * mapping, which need the server's state (options, function table, closing flag); the parts
 * with no such state already live beside it (body.ts, http-errors.ts, function-table.ts).
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  ErrorCode,
  InvalidOptionError,
  LimitError,
  ModuleError,
  RegistryError,
  RuntimeClosedError,
  ServeError,
  type NuvolaError,
} from '../runtime/errors.js';
import type { FunctionInfo, FunctionOptions, InvokeOptions, InvokeResult, Runtime } from '../runtime/index.js';
import { readBody } from './body.js';
import { startCron } from './cron.js';
import { loadFunctions } from './load.js';
import { FunctionTable } from './function-table.js';
import { asServedError, errorBody, statusOf } from './http-errors.js';
import { resolveServeOptions, type ResolvedServeOptions, type ServeOptions } from './options.js';
import { STATUS_PAGE, statusDocument } from './status-page.js';
import { startStreams } from './streams.js';
import { contextFromHeaders, invokeTraced } from './tracing.js';
import { context } from '@opentelemetry/api';

/** A running server. */
export interface NuvolaServer {
  /** Where it listens, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** The fastify instance, for services that add routes of their own (before traffic, ideally). */
  readonly app: FastifyInstance;
  /** The names published and the version each stands for now. */
  readonly functions: FunctionTable;
  /**
   * Registers `wasm` as `name` like `PUT /functions/:name?replace=…` does: with `replace`, a
   * function of that name is swapped for it without dropping calls in flight.
   */
  publish(name: string, wasm: Uint8Array | string, options?: FunctionOptions, replace?: boolean): Promise<void>;
  /** Invokes `name` as `POST /functions/:name/invoke` does (its current version, traced). */
  invoke(name: string, input: Uint8Array, options?: InvokeOptions): Promise<InvokeResult>;
  /** Stops the triggers and the listener (calls in flight are answered first). The runtime stays open. */
  close(): Promise<void>;
}

/** Which routes need the token: writes always, invokes unless `publicInvoke`. */
type Access = 'read' | 'write' | 'invoke';
declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
}

/** The routes and their methods, for 405 answers (`Allow`). */
const ROUTES: [RegExp, string[]][] = [
  [/^\/$/, ['GET', 'HEAD']],
  [/^\/status$/, ['GET', 'HEAD']],
  [/^\/healthz$/, ['GET', 'HEAD']],
  [/^\/readyz$/, ['GET', 'HEAD']],
  [/^\/metrics$/, ['GET', 'HEAD']],
  [/^\/functions$/, ['GET', 'HEAD']],
  [/^\/functions\/[^/]+$/, ['GET', 'HEAD', 'PUT', 'DELETE']],
  [/^\/functions\/[^/]+\/invoke$/, ['POST']],
];

const HEADER_OPTIONS = 'nuvola-options';

/** Starts serving `rt`; resolves once it listens and its triggers run. */
export async function serve(rt: Runtime, options?: ServeOptions): Promise<NuvolaServer> {
  const o = resolveServeOptions(options);
  const table = new FunctionTable(rt);
  const startedAt = Date.now();
  const warn = (message: string): void => rt.options.logger({ function: 'nuvola', level: 'warn', message });
  let closing = false;
  if (o.token === undefined && !isLoopback(o.host)) {
    warn(
      `serve: listening on ${o.host} without a token: anyone who can reach this address may upload, replace, delete and invoke functions; ` +
        'pass token (--token) or listen on 127.0.0.1',
    );
  }

  const invoke = (
    name: string,
    input: Uint8Array,
    invokeOptions: InvokeOptions | undefined,
    parent = context.active(),
  ): Promise<InvokeResult> =>
    table.run(name, (registered) =>
      o.tracing ? invokeTraced(rt, registered, input, invokeOptions, parent, name) : rt.invoke(registered, input, invokeOptions),
    );

  const publish = async (
    name: string,
    wasm: Uint8Array | string,
    fnOptions: FunctionOptions | undefined,
    replace: boolean,
  ): Promise<void> => {
    if (/:v\d+$/.test(name)) {
      throw new ServeError(
        ErrorCode.BAD_REQUEST,
        `function name '${name}' ends like a version (:v<N>), which the server keeps for replaced functions; rename it`,
        {
          function: name,
        },
      );
    }
    const exists = table.has(name) || rt.functions().includes(name);
    if (exists && !replace) {
      throw new RegistryError(
        ErrorCode.ALREADY_REGISTERED,
        `a function named '${name}' is registered; upload with ?replace=true to swap it without dropping calls, or DELETE it first`,
        { function: name },
      );
    }
    const registered = table.nextName(name);
    await rt.register(registered, wasm, fnOptions);
    table.install(name, registered);
  };

  const app = Fastify({
    logger: false,
    ...(o.tls !== undefined ? { https: { key: toPem(o.tls.key), cert: toPem(o.tls.cert), ...httpOptions(o) } } : { http: httpOptions(o) }),
    requestTimeout: o.requestTimeoutMs,
    // Function names run to 128 characters (fastify's default, 100, would answer longer ones with
    // its own uncoded 414). Node's header limit (16 KiB, the URL included) bounds them first: a
    // longer name reaches the runtime, which refuses it with a coded error.
    routerOptions: { maxParamLength: 16 * 1024 },
    forceCloseConnections: true,
    return503OnClosing: true,
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => clientError(err, socket, o),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  // Bodies are read by the routes themselves, as they stream, under the runtime's limits.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.addHook('onRequest', async (req) => {
    const access = req.routeOptions.config.access ?? 'read';
    if (o.token === undefined && access !== 'read' && isLoopback(o.host)) {
      // Without a token a loopback server trusts this machine — not every web page its browser
      // opens: a cross-site request (Origin) or a rebound DNS name (Host) is refused.
      const origin = req.headers.origin;
      if (!isLoopback(hostOf(req.headers.host)) || (origin !== undefined && !isLoopback(hostOf(origin, '')))) {
        throw new ServeError(
          ErrorCode.UNAUTHORIZED,
          `${req.method} ${req.url.split('?')[0]} came from a web page or a name other than this machine's (Host ${JSON.stringify(req.headers.host ?? '')}${origin !== undefined ? `, Origin ${JSON.stringify(origin)}` : ''}); a server without a token takes writes and invokes only from localhost — set a token to serve others`,
          {},
        );
      }
    }
    if (o.token === undefined || access === 'read' || (access === 'invoke' && o.publicInvoke)) return;
    if (!tokenMatches(req.headers.authorization, o.token)) {
      throw new ServeError(
        ErrorCode.UNAUTHORIZED,
        req.headers.authorization === undefined
          ? `${req.method} ${req.url.split('?')[0]!} needs the server's token: send Authorization: Bearer <token>`
          : `the token sent with ${req.method} ${req.url.split('?')[0]!} is not the server's`,
        {},
      );
    }
  });

  app.setErrorHandler((err, _req, reply) => {
    const e = asServedError(err);
    // A body refused part-way is not read to its end: the connection goes.
    if (e.code === ErrorCode.INPUT_TOO_LARGE || e.code === ErrorCode.MODULE_TOO_LARGE) reply.header('connection', 'close');
    return sendError(reply, e);
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    const allow = ROUTES.find(([re]) => re.test(path))?.[1];
    if (allow !== undefined) {
      reply.header('allow', allow.join(', ')).code(405);
      return reply.send(
        errorBody(
          new ServeError(ErrorCode.ROUTE_NOT_FOUND, `${req.method} is not a method of ${path}; it takes ${allow.join(', ')}`, { allow }),
        ),
      );
    }
    return sendError(
      reply,
      new ServeError(ErrorCode.ROUTE_NOT_FOUND, `no endpoint ${req.method} ${path}; see docs/guides/serving.md`, { path }),
    );
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    if (closing) return sendError(reply, new RuntimeClosedError(ErrorCode.CLOSED, 'the server is closing', {}));
    return { ok: true, functions: table.names().length };
  });

  if (o.metrics) {
    app.get('/metrics', async (_req, reply) => {
      const registry = rt.metrics();
      reply.header('content-type', registry.contentType);
      return registry.metrics();
    });
  }

  if (o.statusPage) {
    app.get('/', async (_req, reply) =>
      reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(STATUS_PAGE),
    );
    app.get('/status', async () => statusDocument(rt.stats(), startedAt, (r) => table.published(r), table.names()));
  }

  app.get('/functions', async () => ({ functions: table.names().map((name) => describe(rt, table, name)) }));
  app.get<{ Params: { name: string } }>('/functions/:name', async (req) => describe(rt, table, publishedName(req.params.name)));

  app.put<{ Params: { name: string }; Querystring: Record<string, string> }>(
    '/functions/:name',
    { config: { access: 'write' } },
    async (req, reply) => {
      const name = req.params.name;
      const { replace, fnOptions } = registerOptions(req);
      checkRemoteOptions(name, fnOptions);
      const max = rt.options.maxModuleBytes;
      const bytes = await readBody(
        req.raw,
        max,
        (size) =>
          new ModuleError(
            ErrorCode.MODULE_TOO_LARGE,
            `the module sent for '${name}' is over maxModuleBytes=${max} (at least ${size} bytes); raise it in createRuntime()`,
            {
              function: name,
              bytes: size,
              maxModuleBytes: max,
            },
          ),
        bad,
      );
      await publish(name, bytes, fnOptions, replace);
      return reply.code(201).send(describe(rt, table, name));
    },
  );

  app.delete<{ Params: { name: string } }>('/functions/:name', { config: { access: 'write' } }, async (req, reply) => {
    const name = publishedName(req.params.name);
    if (!table.remove(name)) rt.unregister(name);
    return reply.code(204).send();
  });

  app.post<{ Params: { name: string } }>('/functions/:name/invoke', { config: { access: 'invoke' } }, async (req, reply) => {
    const name = publishedName(req.params.name);
    const max = rt.options.maxInputBytes;
    const input = await readBody(
      req.raw,
      max,
      (size) =>
        new LimitError(
          ErrorCode.INPUT_TOO_LARGE,
          `input to '${name}' is over maxInputBytes=${max} (at least ${size} bytes); send less or raise it in createRuntime()`,
          {
            function: name,
            bytes: size,
            maxInputBytes: max,
          },
        ),
      bad,
    );
    // A client that goes away before its answer cancels the call (invoke(…, { signal })).
    const abort = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) abort.abort(new Error('the HTTP client closed the connection'));
    };
    reply.raw.once('close', onClose);
    const result = await invoke(name, input, invokeOptions(req, abort.signal), o.tracing ? contextFromHeaders(req.headers) : undefined);
    return reply
      .header('content-type', 'application/octet-stream')
      .header('nuvola-return-code', String(result.returnCode))
      .header('nuvola-cold', String(result.cold))
      .header('nuvola-duration-ms', result.durationMs.toFixed(3))
      .send(Buffer.from(result.output.buffer, result.output.byteOffset, result.output.byteLength));
  });

  const clustered = rt.options.cluster !== undefined;
  const triggerInvoke = (fn: string, input: Uint8Array, opts: { idempotencyKey?: string }): Promise<InvokeResult> =>
    invoke(fn, input, opts);
  const stopCron = startCron(o.cron, triggerInvoke, warn);
  let stopStreams: (() => Promise<void>) | undefined;
  try {
    if (o.functions !== undefined) await loadFunctions({ publish: (n, w, f) => publish(n, w, f, false) }, o.functions);
    stopStreams = o.streams.length > 0 ? await startStreams(o.streams, o.redis!, triggerInvoke, clustered, warn) : undefined;
    await app.listen({ port: o.port, host: o.host }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE' && err.code !== 'EADDRNOTAVAIL' && err.code !== 'EACCES') throw err;
      throw new InvalidOptionError(
        ErrorCode.INVALID_OPTION,
        `cannot listen on ${o.host}:${o.port} (${err.code}): ${err.code === 'EADDRINUSE' ? 'the port is in use; pick another (--port), or 0 for a free one' : 'not an address of this machine, or not allowed'}`,
        { path: err.code === 'EADDRNOTAVAIL' ? 'options.host' : 'options.port', host: o.host, port: o.port },
        { cause: err },
      );
    });
  } catch (err) {
    stopCron();
    await stopStreams?.();
    await app.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : o.port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `${o.tls !== undefined ? 'https' : 'http'}://${host}:${port}`,
    app,
    functions: table,
    publish: (name, wasm, fnOptions, replace = false) => publish(name, wasm, fnOptions, replace),
    invoke: (name, input, invokeOpts) => invoke(name, input, invokeOpts),
    close: async () => {
      if (closing) return;
      closing = true;
      stopCron();
      await stopStreams?.();
      await app.close();
    },
  };
}

/** Whether `host` (a name or address, IPv6 with or without brackets) is this machine's loopback. */
function isLoopback(host: string | undefined): boolean {
  if (host === undefined) return false;
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The host name of a `Host` header (`prefix` 'http://') or an `Origin`; undefined when it does not parse. */
function hostOf(value: string | undefined, prefix = 'http://'): string | undefined {
  if (value === undefined) return undefined;
  try {
    return new URL(prefix + value).hostname;
  } catch {
    return undefined;
  }
}

function httpOptions(o: ResolvedServeOptions): Record<string, number> {
  return {
    headersTimeout: o.headersTimeoutMs,
    requestTimeout: o.requestTimeoutMs,
    // How often Node checks those time-outs (its default, 30 s, would let a slow client hold a socket that much longer).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(o.headersTimeoutMs / 4))),
  };
}

function toPem(v: string | Uint8Array): string | Buffer {
  return typeof v === 'string' ? v : Buffer.from(v);
}

/**
 * A name from a URL, refused when it is one of the versions `?replace=true` registers
 * (`name:v<N>`): those belong to the server, and a client reaching one directly would call,
 * describe or remove a version behind the table's back (uncounted in flight, or its current one gone).
 */
function publishedName(name: string): string {
  if (/:v\d+$/.test(name)) {
    throw new RegistryError(
      ErrorCode.UNKNOWN_FUNCTION,
      `no function named '${name}' is published; names ending in :v<N> are the server's versions of replaced functions`,
      {
        function: name,
      },
    );
  }
  return name;
}

/**
 * Register options from a request: host directories (`wasi.dirs`) are refused, since they would
 * let whoever uploads read or write the server's files; the embedding service grants them with
 * `register()`, or a `<name>.json` beside `--functions`.
 */
function checkRemoteOptions(name: string, fnOptions: FunctionOptions | undefined): void {
  const wasi = (fnOptions as { wasi?: unknown } | undefined)?.wasi;
  if (typeof wasi === 'object' && wasi !== null && 'dirs' in wasi) {
    throw new ServeError(
      ErrorCode.BAD_REQUEST,
      `'${name}' asks for host directories (wasi.dirs), which a function uploaded over HTTP may not have; grant them with register() in the embedding service or a ${name}.json beside --functions`,
      { function: name, option: 'wasi.dirs' },
    );
  }
}

function bad(why: string): NuvolaError {
  return new ServeError(ErrorCode.BAD_REQUEST, why, {});
}

function sendError(reply: FastifyReply, err: NuvolaError, status = statusOf(err.code)): FastifyReply {
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(errorBody(err));
}

/** Compares in constant time (over hashes, so lengths leak nothing either). */
function tokenMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/.exec(header ?? '');
  if (match === null) return false;
  const hash = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(hash(match[1]!), hash(token));
}

/** A socket-level failure (time-outs, malformed requests): answered in JSON, then closed. */
function clientError(err: NodeJS.ErrnoException, socket: Socket, o: ResolvedServeOptions): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let status: number;
  let e: NuvolaError;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    e = new ServeError(
      ErrorCode.REQUEST_TIMEOUT,
      `the request was not received in time (headers within ${o.headersTimeoutMs} ms, the whole request within ${o.requestTimeoutMs} ms); the connection is closed`,
      { headersTimeoutMs: o.headersTimeoutMs, requestTimeoutMs: o.requestTimeoutMs },
    );
  } else {
    status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    e = new ServeError(ErrorCode.BAD_REQUEST, `malformed HTTP request (${err.code ?? err.message})`, { reason: err.code });
  }
  if (socket.writable) {
    const body = JSON.stringify(errorBody(e));
    socket.write(
      `HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  // Half-closed, not destroyed: a reset would let the client's kernel drop the answer while it
  // still sends. What it sends meanwhile is discarded; the socket goes after a short grace.
  socket.on('data', () => {});
  socket.end();
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** `describe(name)` as JSON (its published name; the host handler's function left out). */
function describe(rt: Runtime, table: FunctionTable, name: string): Record<string, unknown> {
  const info: Partial<FunctionInfo> = { ...rt.describe(table.resolve(name)) };
  delete info.handler;
  return { ...info, name, ...(table.has(name) ? { registeredAs: table.resolve(name) } : {}) };
}

/** A PUT's register options: the query's (values as JSON where they parse: `timeoutMs=100`, `reuse=keep`) or the `nuvola-options` header's JSON. */
function registerOptions(req: FastifyRequest<{ Querystring: Record<string, string> }>): {
  replace: boolean;
  fnOptions: FunctionOptions | undefined;
} {
  const { replace, ...query } = req.query;
  if (replace !== undefined && replace !== 'true' && replace !== 'false') {
    throw new ServeError(ErrorCode.BAD_REQUEST, `query replace must be true or false, got ${JSON.stringify(replace)}`, {
      query: 'replace',
    });
  }
  let fnOptions: Record<string, unknown> | undefined;
  const header = req.headers[HEADER_OPTIONS];
  if (header !== undefined) {
    try {
      fnOptions = JSON.parse(String(header)) as Record<string, unknown>;
    } catch (err) {
      throw new ServeError(ErrorCode.BAD_REQUEST, `header ${HEADER_OPTIONS} is not JSON: ${(err as Error).message}`, {
        header: HEADER_OPTIONS,
      });
    }
  }
  if (Object.keys(query).length > 0) {
    fnOptions = { ...fnOptions };
    for (const [key, value] of Object.entries(query)) {
      try {
        fnOptions[key] = JSON.parse(value);
      } catch {
        fnOptions[key] = value;
      }
    }
  }
  return { replace: replace === 'true', fnOptions: fnOptions as FunctionOptions | undefined };
}

/** An invoke's options from its headers: `nuvola-idempotency-key`, `nuvola-state-key`, `nuvola-timeout-ms`. */
function invokeOptions(req: FastifyRequest, signal: AbortSignal): InvokeOptions {
  const one = (name: string): string | undefined => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const options: InvokeOptions = { signal };
  const idempotencyKey = one('nuvola-idempotency-key');
  const stateKey = one('nuvola-state-key');
  const timeout = one('nuvola-timeout-ms');
  if (idempotencyKey !== undefined) options.idempotencyKey = idempotencyKey;
  if (stateKey !== undefined) options.stateKey = stateKey;
  if (timeout !== undefined) {
    if (!/^\d{1,10}$/.test(timeout)) {
      throw new ServeError(
        ErrorCode.BAD_REQUEST,
        `header nuvola-timeout-ms must be a whole number of milliseconds, got ${JSON.stringify(timeout)}`,
        {
          header: 'nuvola-timeout-ms',
        },
      );
    }
    options.timeoutMs = Number(timeout);
  }
  return options;
}
