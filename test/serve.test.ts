// `nuvola/serve` with real HTTP clients on loopback (Node's fetch, raw sockets for the slow and
// the malformed): upload, describe, invoke and remove functions, the token, the coded errors and
// their statuses, bodies over the runtime's limits, slow clients, a client that goes away
// mid-call, a replace that drops no call, and /metrics.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from 'nuvola';
import { serve, type NuvolaServer } from 'nuvola/serve';
import { until } from 'nuvola/testing';
import { guestBytes, text } from './helpers.js';

const TOKEN = 'test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

let rt: Runtime;
let server: NuvolaServer;
let url: string;

beforeAll(async () => {
  rt = await createRuntime({ workers: 2, maxInputBytes: 64 * 1024, maxModuleBytes: 1024 * 1024, maxQueue: 2, logger: () => {} });
  server = await serve(rt, { port: 0, token: TOKEN, headersTimeoutMs: 300, requestTimeoutMs: 600 });
  url = server.url;
});
afterAll(async () => {
  await server?.close();
  await rt?.close();
});

async function put(name: string, bytes: Uint8Array, query = '', headers: Record<string, string> = auth): Promise<Response> {
  return fetch(`${url}/functions/${name}${query}`, { method: 'PUT', body: bytes as Uint8Array<ArrayBuffer>, headers });
}
async function invoke(
  name: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${url}/functions/${name}/invoke`, {
    method: 'POST',
    body: body as string | Uint8Array<ArrayBuffer>,
    headers: { ...auth, ...headers },
    ...(signal ? { signal } : {}),
  });
}
async function error(res: Response): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return (await res.json()) as { code: string; message: string; details: Record<string, unknown> };
}

/** Sends `parts` over a raw socket, a pause between each; resolves with all the server answered until it closed. */
function raw(parts: string[], pauseMs: number): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    let i = 0;
    const next = (): void => {
      if (i < parts.length && !socket.destroyed) socket.write(parts[i++]!);
      if (i < parts.length) setTimeout(next, pauseMs);
    };
    socket.on('connect', next);
  });
}

describe('nuvola serve: functions over HTTP', () => {
  it('uploads, lists, describes, invokes and removes a function; output in the body, return code in a header', async () => {
    const up = await put('echo', guestBytes('core_echo'), '?timeoutMs=5000');
    expect(up.status).toBe(201);
    expect(await up.json()).toMatchObject({ name: 'echo', kind: 'wasm', timeoutMs: 5000, abi: 'nuvola' });

    const res = await invoke('echo', 'hello');
    expect(res.status).toBe(200);
    expect(res.headers.get('nuvola-return-code')).toBe('5');
    expect(text(new Uint8Array(await res.arrayBuffer()))).toBe('olleh');

    const list = (await (await fetch(`${url}/functions`)).json()) as { functions: { name: string }[] };
    expect(list.functions.map((f) => f.name)).toContain('echo');
    expect(await (await fetch(`${url}/functions/echo`)).json()).toMatchObject({ name: 'echo', timeoutMs: 5000 });

    expect((await fetch(`${url}/functions/echo`, { method: 'DELETE', headers: auth })).status).toBe(204);
    const gone = await invoke('echo', 'x');
    expect(gone.status).toBe(404);
    expect((await error(gone)).code).toBe('E_UNKNOWN_FUNCTION');
  });

  it('register options come from the nuvola-options header too; a second upload without ?replace is E_ALREADY_REGISTERED (409)', async () => {
    const up = await put('echo2', guestBytes('core_echo'), '', { ...auth, 'nuvola-options': JSON.stringify({ timeoutMs: 1234 }) });
    expect(up.status).toBe(201);
    expect(((await up.json()) as { timeoutMs: number }).timeoutMs).toBe(1234);
    const again = await put('echo2', guestBytes('core_echo'));
    expect(again.status).toBe(409);
    expect((await error(again)).code).toBe('E_ALREADY_REGISTERED');
    const badOptions = await put('echo3', guestBytes('core_echo'), '?timeoutMs=-5');
    expect(badOptions.status).toBe(400);
    expect((await error(badOptions)).code).toBe('E_INVALID_OPTION');
    const badHeader = await put('echo3', guestBytes('core_echo'), '', { ...auth, 'nuvola-options': '{nope' });
    expect(badHeader.status).toBe(400);
    expect((await error(badHeader)).code).toBe('E_BAD_REQUEST');
  });

  it('writes and invokes need the token: none or a wrong one is E_UNAUTHORIZED (401); reads do not', async () => {
    const none = await put('t', guestBytes('core_echo'), '', {});
    expect(none.status).toBe(401);
    expect((await error(none)).code).toBe('E_UNAUTHORIZED');
    const wrong = await put('t', guestBytes('core_echo'), '', { authorization: 'Bearer not-the-token-at-all' });
    expect(wrong.status).toBe(401);
    const invokeNone = await fetch(`${url}/functions/t/invoke`, { method: 'POST', body: 'x' });
    expect(invokeNone.status).toBe(401);
    expect((await fetch(`${url}/functions`)).status).toBe(200);
    expect(rt.functions()).not.toContain('t');
  });

  it('a malformed module is E_INVALID_MODULE (400); one over maxModuleBytes E_MODULE_TOO_LARGE (413), refused while it streams', async () => {
    const junk = await put('junk', new TextEncoder().encode('not wasm at all'));
    expect(junk.status).toBe(400);
    expect((await error(junk)).code).toBe('E_INVALID_MODULE');
    const big = await put('big', new Uint8Array(2 * 1024 * 1024));
    expect(big.status).toBe(413);
    expect((await error(big)).code).toBe('E_MODULE_TOO_LARGE');
    // Chunked, no Content-Length: counted as it arrives.
    const chunks = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 40; i++) c.enqueue(new Uint8Array(64 * 1024));
        c.close();
      },
    });
    const streamed = await fetch(`${url}/functions/big/invoke`, {
      method: 'POST',
      body: chunks,
      headers: auth,
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect((await error(streamed)).code).toBe('E_INPUT_TOO_LARGE');
    expect(rt.functions()).not.toContain('big');
  });

  it('input over maxInputBytes is E_INPUT_TOO_LARGE (413); the server goes on serving', async () => {
    await put('echo4', guestBytes('core_echo'));
    const res = await invoke('echo4', new Uint8Array(64 * 1024 + 1));
    expect(res.status).toBe(413);
    expect((await error(res)).code).toBe('E_INPUT_TOO_LARGE');
    expect((await invoke('echo4', 'ok')).status).toBe(200);
  });

  it('a trap is 502, a timeout 504, a full queue 429 — each with its code', async () => {
    await put('trap', guestBytes('core_unreachable'));
    const trap = await invoke('trap', '');
    expect(trap.status).toBe(502);
    expect((await error(trap)).code).toBe('E_GUEST_TRAP');

    await put('sleep', guestBytes('core_sleep'), '?maxConcurrency=1');
    const slow = await invoke('sleep', '2000', { 'nuvola-timeout-ms': '100' });
    expect(slow.status).toBe(504);
    expect((await error(slow)).code).toBe('E_TIMEOUT');
    const badTimeout = await invoke('sleep', '1', { 'nuvola-timeout-ms': 'soon' });
    expect(badTimeout.status).toBe(400);
    expect((await error(badTimeout)).code).toBe('E_BAD_REQUEST');

    // maxConcurrency 1, maxQueue 2: one runs, two wait, the next is refused at once.
    const running = invoke('sleep', '300');
    await until(() => rt.stats().byFunction['sleep']!.running === 1);
    const waiting = [invoke('sleep', '1'), invoke('sleep', '1')];
    await until(() => rt.stats().byFunction['sleep']!.waiting === 2);
    const refused = await invoke('sleep', '1');
    expect(refused.status).toBe(429);
    expect((await error(refused)).code).toBe('E_QUEUE_FULL');
    for (const res of await Promise.all([running, ...waiting])) expect(res.status).toBe(200);
  });

  it('unknown routes are E_ROUTE_NOT_FOUND (404); a wrong method 405 with Allow', async () => {
    const nope = await fetch(`${url}/nope`);
    expect(nope.status).toBe(404);
    expect((await error(nope)).code).toBe('E_ROUTE_NOT_FOUND');
    const patch = await fetch(`${url}/functions/echo`, { method: 'PATCH', headers: auth });
    expect(patch.status).toBe(405);
    expect(patch.headers.get('allow')).toBe('GET, HEAD, PUT, DELETE');
    expect((await error(patch)).code).toBe('E_ROUTE_NOT_FOUND');
    const getInvoke = await fetch(`${url}/functions/echo/invoke`);
    expect(getInvoke.status).toBe(405);
  });

  it('a client that sends its headers too slowly gets E_REQUEST_TIMEOUT (408) and is closed; others are served meanwhile', async () => {
    await put('echo5', guestBytes('core_echo'));
    const slow = raw(
      ['POST /functions/echo5/invoke HTTP/1.1\r\n', 'Host: x\r\n', 'X-A: 1\r\n', 'X-B: 1\r\n', 'X-C: 1\r\n', 'X-D: 1\r\n'],
      150,
    );
    const fast = await invoke('echo5', 'abc');
    expect(text(new Uint8Array(await fast.arrayBuffer()))).toBe('cba');
    const answer = await slow;
    expect(answer).toMatch(/^HTTP\/1.1 408/);
    expect(answer).toContain('"code":"E_REQUEST_TIMEOUT"');
  });

  it('a client that sends its body too slowly gets E_REQUEST_TIMEOUT too', async () => {
    const head = `POST /functions/echo5/invoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 100\r\n\r\n`;
    const answer = await raw([head, 'a'.repeat(10), 'b'.repeat(10), 'c'.repeat(10), 'd'.repeat(10), 'e'.repeat(10)], 200);
    expect(answer).toMatch(/^HTTP\/1.1 408/);
    expect(answer).toContain('"code":"E_REQUEST_TIMEOUT"');
  });

  it('a malformed request is E_BAD_REQUEST (400)', async () => {
    const answer = await raw(['GARBAGE\r\n\r\n'], 10);
    expect(answer).toMatch(/^HTTP\/1.1 400/);
    expect(answer).toContain('"code":"E_BAD_REQUEST"');
  });

  it('a client that disconnects mid-call cancels the call (E_CANCELLED counted, nothing left in flight)', async () => {
    await put('nap', guestBytes('core_sleep'));
    const before = rt.stats().byFunction['nap']?.errors['E_CANCELLED'] ?? 0;
    const abort = new AbortController();
    const call = invoke('nap', '20000', {}, abort.signal).catch((err: Error) => err);
    await until(() => (rt.stats().byFunction['nap']?.running ?? 0) === 1);
    abort.abort();
    expect(await call).toBeInstanceOf(Error);
    await until(() => (rt.stats().byFunction['nap']?.errors['E_CANCELLED'] ?? 0) === before + 1);
    await until(() => rt.stats().byFunction['nap']!.running === 0);
    expect(rt.stats().inflight).toBe(0);
    expect((await invoke('nap', '1')).status).toBe(200);
  });

  it('?replace=true swaps a function in while a call on the old version finishes on it', async () => {
    await put('swap', guestBytes('core_sleep'));
    const old = invoke('swap', '400');
    await until(() => (rt.stats().byFunction['swap']?.running ?? 0) === 1);
    const replaced = await put('swap', guestBytes('core_echo'), '?replace=true');
    expect(replaced.status).toBe(201);
    expect(((await replaced.json()) as { registeredAs: string }).registeredAs).toBe('swap:v2');
    const fresh = await invoke('swap', 'xyz');
    expect(text(new Uint8Array(await fresh.arrayBuffer()))).toBe('zyx');
    const first = await old;
    expect(first.status).toBe(200);
    expect(text(new Uint8Array(await first.arrayBuffer()))).toBe('slept 400');
    // The old version is unregistered once its last call is answered.
    await until(() => !rt.functions().includes('swap'));
    expect(rt.functions()).toContain('swap:v2');
    expect(server.functions.names()).toContain('swap');
    expect(server.functions.names()).not.toContain('swap:v2');
    // Its name stays taken: an upload without ?replace is refused, and registers nothing.
    const again = await put('swap', guestBytes('core_echo'));
    expect(again.status).toBe(409);
    expect((await error(again)).code).toBe('E_ALREADY_REGISTERED');
    expect(rt.functions()).not.toContain('swap');
  });

  it('a token sent in the query string is not taken, nor echoed back in the 401', async () => {
    const res = await fetch(`${url}/functions/echo?token=${TOKEN}&access_token=${TOKEN}`, { method: 'DELETE' });
    expect(res.status).toBe(401);
    const e = await error(res);
    expect(e.code).toBe('E_UNAUTHORIZED');
    expect(JSON.stringify(e)).not.toContain(TOKEN);
  });

  it('a replaced version (name:v<N>) cannot be invoked, described or removed by its internal name: E_UNKNOWN_FUNCTION (404)', async () => {
    expect((await put('versioned', guestBytes('core_echo'))).status).toBe(201);
    expect((await put('versioned', guestBytes('core_echo'), '?replace=true')).status).toBe(201);
    expect(rt.functions()).toContain('versioned:v2');
    const del = await fetch(`${url}/functions/versioned:v2`, { method: 'DELETE', headers: auth });
    expect(del.status).toBe(404);
    expect((await error(del)).code).toBe('E_UNKNOWN_FUNCTION');
    const call = await invoke('versioned:v2', 'abc');
    expect(call.status).toBe(404);
    expect((await error(call)).code).toBe('E_UNKNOWN_FUNCTION');
    expect((await fetch(`${url}/functions/versioned%3Av2`)).status).toBe(404);
    // The published name still reaches its current version.
    const res = await invoke('versioned', 'abc');
    expect(res.status).toBe(200);
    expect(text(new Uint8Array(await res.arrayBuffer()))).toBe('cba');
  });

  it('a name of up to 128 characters is served; a longer one is a coded error, not the framework’s own', async () => {
    const long = 'n'.repeat(128);
    expect((await put(long, guestBytes('core_echo'))).status).toBe(201);
    const res = await invoke(long, 'ab');
    expect(res.status).toBe(200);
    expect(text(new Uint8Array(await res.arrayBuffer()))).toBe('ba');
    expect((await fetch(`${url}/functions/${long}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    const tooLong = await put('n'.repeat(4000), guestBytes('core_echo'));
    expect(tooLong.status).toBe(400);
    expect((await error(tooLong)).code).toBe('E_INVALID_OPTION');
    const unknown = await fetch(`${url}/functions/${'n'.repeat(4000)}`);
    expect(unknown.status).toBe(404);
    expect((await error(unknown)).code).toBe('E_UNKNOWN_FUNCTION');
  });

  it('an upload that asks for host directories (wasi.dirs) is E_BAD_REQUEST (400): no client reads the server’s files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nuvola-serve-'));
    writeFileSync(join(dir, 'secret.txt'), 'the server secret\n');
    try {
      const wasi = { args: ['cat', '/host/secret.txt'], dirs: [{ host: dir, guest: '/host' }] };
      const byHeader = await put('leak', guestBytes('wasi_wc_c'), '', { ...auth, 'nuvola-options': JSON.stringify({ wasi }) });
      const byQuery = await put('leak2', guestBytes('wasi_wc_c'), `?wasi=${encodeURIComponent(JSON.stringify(wasi))}`);
      for (const res of [byHeader, byQuery]) {
        expect(res.status).toBe(400);
        const e = await error(res);
        expect(e.code).toBe('E_BAD_REQUEST');
        expect(e.message).toContain('wasi.dirs');
      }
      expect(rt.functions()).not.toContain('leak');
      expect(rt.functions()).not.toContain('leak2');
      const call = await invoke('leak', '');
      expect(text(new Uint8Array(await call.arrayBuffer()))).not.toContain('the server secret');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('/healthz, /readyz and /metrics answer; the metrics count calls and errors by code', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    await put('m', guestBytes('core_echo'));
    for (let i = 0; i < 3; i++) await invoke('m', 'abc');
    const res = await fetch(`${url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const body = await res.text();
    expect(body).toContain('nuvola_calls_total{function="m"} 3');
    expect(body).toContain('nuvola_call_duration_seconds_count{function="m"} 3');
    expect(body).toContain('nuvola_call_duration_seconds_bucket{function="m",le="+Inf"} 3');
    expect(body).toMatch(/nuvola_call_errors_total\{function="trap",code="E_GUEST_TRAP"\} 1/);
    expect(body).toMatch(/nuvola_workers \d+/);
    expect(body).toMatch(/nuvola_usage_bytes_in_total\{function="m"\} 9/);
    const starts = /nuvola_cold_starts_total\{function="m"\} (\d+)[\s\S]*nuvola_warm_starts_total\{function="m"\} (\d+)/.exec(body);
    expect(Number(starts![1]) + Number(starts![2])).toBe(3);
  });
});

describe('a server without a token, on loopback', () => {
  /** A request with the Host and Origin a browser would send (Node's http client: fetch may not set Host). */
  function send(
    target: string,
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: Uint8Array | string,
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${target}${path}`, { method, headers }, (res) => {
        let data = '';
        res.on('data', (d: Buffer) => (data += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('refuses writes and invokes from a rebound DNS name (Host) or another site (Origin): E_UNAUTHORIZED (401); reads and local clients are served', async () => {
    const open = await serve(rt, { port: 0 });
    const { host } = new URL(open.url);
    try {
      const rebound = await send(
        open.url,
        'PUT',
        '/functions/rebound',
        { host: `evil.example:${new URL(open.url).port}` },
        guestBytes('core_echo'),
      );
      expect(rebound.status).toBe(401);
      expect((JSON.parse(rebound.body) as { code: string }).code).toBe('E_UNAUTHORIZED');
      expect(rt.functions()).not.toContain('rebound');

      const local = await send(
        open.url,
        'PUT',
        '/functions/local',
        { host: `localhost:${new URL(open.url).port}` },
        guestBytes('core_echo'),
      );
      expect(local.status).toBe(201);
      const crossSite = await send(
        open.url,
        'POST',
        '/functions/local/invoke',
        { host, origin: 'https://evil.example', 'content-type': 'text/plain' },
        'abc',
      );
      expect(crossSite.status).toBe(401);
      expect((JSON.parse(crossSite.body) as { code: string }).code).toBe('E_UNAUTHORIZED');
      const sameSite = await send(open.url, 'POST', '/functions/local/invoke', { host, origin: open.url }, 'abc');
      expect(sameSite).toEqual({ status: 200, body: 'cba' });
      expect((await send(open.url, 'GET', '/functions/local', { host: 'evil.example' })).status).toBe(200);
      expect((await send(open.url, 'DELETE', '/functions/local', { host: 'evil.example' })).status).toBe(401);
      expect((await send(open.url, 'DELETE', '/functions/local', { host })).status).toBe(204);
    } finally {
      await open.close();
    }
  });
});

describe('a server without a token, off loopback', () => {
  it('warns at start that anyone who can reach it may upload and invoke; not with a token or on loopback', async () => {
    const warnings: string[] = [];
    const own = await createRuntime({ workers: 1, logger: (e) => (e.level === 'warn' ? warnings.push(e.message) : undefined) });
    try {
      for (const [options, warned] of [
        [{ host: '0.0.0.0', port: 0 }, true],
        [{ host: '0.0.0.0', port: 0, token: 'a-token-of-enough-length' }, false],
        [{ host: '127.0.0.1', port: 0 }, false],
      ] as const) {
        warnings.length = 0;
        const server = await serve(own, options);
        await server.close();
        expect(
          warnings.some((w) => w.includes('without a token')),
          JSON.stringify(options),
        ).toBe(warned);
      }
    } finally {
      await own.close();
    }
  });
});

describe('serve options', () => {
  it('refuses bad options with coded errors before listening', async () => {
    await expect(serve(rt, { port: -1 })).rejects.toMatchObject({ code: 'E_INVALID_OPTION', details: { path: 'options.port' } });
    await expect(serve(rt, { token: 'short' })).rejects.toMatchObject({ code: 'E_INVALID_OPTION', details: { path: 'options.token' } });
    await expect(serve(rt, { headersTimeoutMs: 5000, requestTimeoutMs: 1000 })).rejects.toMatchObject({ code: 'E_INVALID_OPTION' });
    await expect(serve(rt, { cron: ['every minute please'] })).rejects.toMatchObject({
      code: 'E_INVALID_TRIGGER',
      details: { path: 'options.cron[0]' },
    });
    await expect(serve(rt, { cron: ['61 * * * * f'] })).rejects.toMatchObject({ code: 'E_INVALID_TRIGGER' });
    await expect(serve(rt, { streams: [{ stream: 's', function: 'f' }] })).rejects.toMatchObject({
      code: 'E_INVALID_TRIGGER',
      details: { path: 'options.redis' },
    });
    await expect(serve(rt, { streams: [{ stream: 's' } as never], redis: 'redis://127.0.0.1:1' })).rejects.toMatchObject({
      code: 'E_INVALID_TRIGGER',
      details: { path: 'options.streams[0].function' },
    });
    await expect(serve(rt, { bogus: 1 } as never)).rejects.toMatchObject({ code: 'E_INVALID_OPTION' });
    const port = Number(new URL(url).port);
    await expect(serve(rt, { port })).rejects.toMatchObject({ code: 'E_INVALID_OPTION', details: { path: 'options.port', port } });
    await expect(serve(rt, { port: 0, host: '192.0.2.1' })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { path: 'options.host' },
    });
    // The server that holds the port goes on.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});

describe('rt.metrics() for embedding services', () => {
  it('is one prom-client registry, read at each scrape, that merges with a service’s own', async () => {
    const { Registry, Counter } = await import('prom-client');
    const mine = new Registry();
    new Counter({ name: 'my_service_requests_total', help: 'mine', registers: [mine] }).inc(7);
    expect(rt.metrics()).toBe(rt.metrics());
    const before = await rt.metrics().metrics();
    const calls = Number(/nuvola_calls_total\{function="m"\} (\d+)/.exec(before)![1]);
    await rt.invoke('m', 'x');
    const merged = await Registry.merge([rt.metrics(), mine]).metrics();
    expect(merged).toContain(`nuvola_calls_total{function="m"} ${calls + 1}`);
    expect(merged).toContain('my_service_requests_total 7');
    expect(rt.stats().byFunction['m']).toMatchObject({ usageTotals: { bytesIn: 10 } });
  });
});

describe('TLS', () => {
  it('serves HTTPS with the key and certificate given (a self-signed fixture for 127.0.0.1)', async () => {
    const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
    const cert = fixture('tls-localhost.crt');
    const secure = await serve(rt, { port: 0, tls: { key: fixture('tls-localhost.key'), cert } });
    try {
      expect(secure.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(`${secure.url}/functions/m/invoke`, { method: 'POST', ca: cert }, (res) => {
          let data = '';
          res.on('data', (d: Buffer) => (data += d.toString()));
          res.on('end', () => resolve(`${res.statusCode} ${res.headers['nuvola-return-code']} ${data}`));
        });
        req.on('error', reject);
        req.end('tls');
      });
      expect(body).toBe('200 3 slt');
    } finally {
      await secure.close();
    }
    await expect(serve(rt, { port: 0, tls: { key: '', cert: 'x' } })).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
      details: { path: 'options.tls' },
    });
  });
});
