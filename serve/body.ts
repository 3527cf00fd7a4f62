/**
 * Main thread. A request body read as it streams in, never past `limit` bytes: a
 * `Content-Length` over it is refused before a byte is read, and a chunked body is refused as
 * soon as it passes it (the connection is then closed, so the rest is never read).
 */
import type { IncomingMessage } from 'node:http';
import type { NuvolaError } from '../runtime/errors.js';

/** Reads `req` whole; rejects with `tooLarge(bytes)` past `limit`, `E_BAD_REQUEST` when it breaks off. */
export function readBody(
  req: IncomingMessage,
  limit: number,
  tooLarge: (bytes: number) => NuvolaError,
  bad: (why: string) => NuvolaError,
): Promise<Uint8Array> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(Number(declared)));
  return new Promise<Uint8Array>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size > limit) {
        done();
        req.pause();
        reject(tooLarge(size));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      done();
      reject(bad(`the request body broke off: ${err.message}`));
    };
    const onAborted = (): void => onError(new Error('the client closed the connection'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
