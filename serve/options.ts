/**
 * Main thread. The options of `serve(rt, options)` and `nuvola serve`, as a schema written
 * with the building blocks of runtime/option-spec.ts: each option's type, doc, range and
 * default once; every value checked before a socket opens (a bad one is an
 * `E_INVALID_OPTION` or `E_INVALID_TRIGGER` naming it in `details.path`).
 */
import { fail, flag, int, MAX_TIMEOUT_MS, resolveWith, type OptionSpec, type Schema } from '../runtime/option-spec.js';
import { ErrorCode, InvalidOptionError } from '../runtime/errors.js';
import { parseCronTrigger, type CronTrigger } from './cron.js';
import { checkStreamTrigger, type StreamTrigger } from './streams.js';

/** What `serve()` takes (every field optional). */
export interface ServeOptions {
  /** TCP port; 0 picks a free one (`server.url` says which). Default 8080. */
  port?: number;
  /** Address to listen on. Default `'127.0.0.1'` (loopback only); `'0.0.0.0'` for every interface. */
  host?: string;
  /** Bearer token writes need (`PUT`/`DELETE /functions/…`), and invokes too unless `publicInvoke`. Default: none (anyone on `host` may). */
  token?: string;
  /** Invokes need no token even when one is set. Default false. */
  publicInvoke?: boolean;
  /** TLS: a PEM key and certificate (strings or bytes), as Node's `https.createServer` takes them. Default: plain HTTP. */
  tls?: { key: string | Uint8Array; cert: string | Uint8Array };
  /** Longest a client may take to send a request's headers, in ms (slow-loris guard). Default 10 000. */
  headersTimeoutMs?: number;
  /** Longest a client may take to send a whole request, body included, in ms. Default 30 000. */
  requestTimeoutMs?: number;
  /** Serve `GET /metrics` (Prometheus text). Default true. */
  metrics?: boolean;
  /** A span per invocation through `@opentelemetry/api` (no cost without an SDK). Default true. */
  tracing?: boolean;
  /** Serve the status page at `GET /` and its figures at `GET /status`. Default true. */
  statusPage?: boolean;
  /** Cron triggers, each `"<schedule> <function>"` (5 or 6 fields, e.g. `"*\/5 * * * * report"`). Default none. */
  cron?: string[];
  /** Redis Streams triggers: each message on `stream` invokes `function` (at least once). Default none. */
  streams?: StreamTrigger[];
  /** Redis URL the stream triggers read (default: none; needed when `streams` is given). */
  redis?: string;
  /** A folder whose every `.wasm` and `.ts` (built first) is published under its file name before the server listens. Default none. */
  functions?: string;
}

/** The options resolved: every default filled in, triggers parsed. */
export interface ResolvedServeOptions {
  port: number;
  host: string;
  token: string | undefined;
  publicInvoke: boolean;
  tls: { key: string | Uint8Array; cert: string | Uint8Array } | undefined;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  metrics: boolean;
  tracing: boolean;
  statusPage: boolean;
  cron: CronTrigger[];
  streams: StreamTrigger[];
  redis: string | undefined;
  functions: string | undefined;
}

const pem = (v: unknown): boolean => (typeof v === 'string' && v.length > 0) || (v instanceof Uint8Array && v.byteLength > 0);

const SERVE_SCHEMA: Schema = {
  port: int({ min: 0, max: 65535, default: 8080, doc: 'TCP port; 0 picks a free one (`server.url` says which)' }),
  host: {
    type: 'string',
    doc: "address to listen on; `'0.0.0.0'` for every interface",
    default: '127.0.0.1',
    check(value, path) {
      if (typeof value !== 'string' || value.length === 0 || value.length > 255) fail(path, 'a host name or address', value);
      return value;
    },
  },
  token: {
    type: 'string',
    doc: 'bearer token writes need, and invokes too unless `publicInvoke`; at least 16 characters',
    default: undefined,
    check(value, path) {
      if (typeof value !== 'string' || value.length < 16 || !/^[\x21-\x7e]+$/.test(value)) {
        fail(path, 'a string of at least 16 printable characters without spaces', value === undefined ? value : '(hidden)');
      }
      return value;
    },
  },
  publicInvoke: flag(false, 'invokes need no token even when one is set'),
  tls: {
    type: '{ key: string | Uint8Array; cert: string | Uint8Array }',
    doc: "TLS: a PEM key and certificate, as Node's `https.createServer` takes them",
    default: undefined,
    check(value, path) {
      const tls = value as { key?: unknown; cert?: unknown } | null;
      if (tls === null || typeof tls !== 'object' || !pem(tls.key) || !pem(tls.cert) || Object.keys(tls).length !== 2) {
        fail(path, 'an object { key, cert } of PEM strings or bytes', value);
      }
      return value;
    },
  },
  headersTimeoutMs: int({
    min: 100,
    max: MAX_TIMEOUT_MS,
    default: 10_000,
    doc: "longest a client may take to send a request's headers, in ms",
  }),
  requestTimeoutMs: int({
    min: 100,
    max: MAX_TIMEOUT_MS,
    default: 30_000,
    doc: 'longest a client may take to send a whole request, body included, in ms',
  }),
  metrics: flag(true, 'serve `GET /metrics` (Prometheus text)'),
  tracing: flag(true, 'a span per invocation through `@opentelemetry/api` (no cost without an SDK)'),
  statusPage: flag(true, 'serve the status page at `GET /` and its figures at `GET /status`'),
  cron: list('cron triggers, each `"<schedule> <function>"`', (item, path) => parseCronTrigger(item, path)),
  streams: list('Redis Streams triggers `{ stream, function, group?, consumer? }`', (item, path) => checkStreamTrigger(item, path)),
  redis: {
    type: 'string',
    doc: 'Redis URL the stream triggers read',
    default: undefined,
    check(value, path) {
      if (typeof value !== 'string' || !/^rediss?:\/\//.test(value)) fail(path, 'a redis:// or rediss:// URL', value);
      return value;
    },
  },
  functions: {
    type: 'string',
    doc: 'a folder whose every `.wasm` and `.ts` (built first) is published under its file name before the server listens',
    default: undefined,
    check(value, path) {
      if (typeof value !== 'string' || value.length === 0) fail(path, 'a folder path', value);
      return value;
    },
  },
};

function list(doc: string, item: (value: unknown, path: string) => unknown): OptionSpec {
  return {
    type: 'array',
    doc,
    default: [],
    check(value, path) {
      if (!Array.isArray(value)) fail(path, 'an array', value);
      return value.map((v, i) => item(v, `${path}[${i}]`));
    },
  };
}

/** For the options reference (`npm run docs`): the interface, where it is used, its schema. */
export const SERVE_OPTION_SCHEMA = {
  name: 'ServeOptions',
  of: '`serve(rt, options)` (`nuvola/serve`) and `nuvola serve`',
  schema: SERVE_SCHEMA,
};

/** Checks `options` (before anything listens); throws `E_INVALID_OPTION`/`E_INVALID_TRIGGER` naming the option. */
export function resolveServeOptions(options: unknown): ResolvedServeOptions {
  const resolved = resolveWith(SERVE_SCHEMA, options, 'options') as unknown as ResolvedServeOptions;
  if (resolved.headersTimeoutMs > resolved.requestTimeoutMs) {
    throw new InvalidOptionError(
      ErrorCode.INVALID_OPTION,
      `options.headersTimeoutMs (${resolved.headersTimeoutMs}) must not exceed options.requestTimeoutMs (${resolved.requestTimeoutMs}): the headers are part of the request`,
      { path: 'options.headersTimeoutMs' },
    );
  }
  if (resolved.streams.length > 0 && resolved.redis === undefined) {
    throw new InvalidOptionError(ErrorCode.INVALID_TRIGGER, 'stream triggers need options.redis (a redis:// URL) to read from', {
      path: 'options.redis',
    });
  }
  return resolved;
}
