/**
 * Main thread. Runs a host handler (`registerHandler`): a JavaScript function called like a
 * guest, under its timeout, ended at once with E_CLOSED when the runtime closes, its result
 * checked.
 */
import { ErrorCode, HandlerError, NuvolaError, RuntimeClosedError, TimeoutError } from './errors.js';
import type { HostHandler } from './runtime-types.js';

/** A registered host handler with its time limit. */
export interface HandlerEntry {
  handler: HostHandler;
  timeoutMs: number;
}

/**
 * Runs `handler` as `name` on `input`. `closing` is the runtime's: aborted at close, which
 * rejects a call not started and ends one running.
 */
export function runHandler(
  name: string,
  handler: HostHandler,
  input: Uint8Array,
  timeoutMs: number,
  closing: AbortSignal,
): Promise<{ output: Uint8Array; returnCode: number }> {
  if (closing.aborted) {
    return Promise.reject(new RuntimeClosedError(ErrorCode.CLOSED, `the runtime is closed; '${name}' was not started`, { function: name }));
  }
  const controller = new AbortController();
  let rejectClosed!: (err: Error) => void;
  // close() ends the call at once with E_CLOSED, whether or not the handler heeds its signal.
  const closed = new Promise<never>((_, reject) => (rejectClosed = reject));
  const onClose = (): void => {
    controller.abort(closing.reason);
    rejectClosed(new RuntimeClosedError(ErrorCode.CLOSED, `the runtime closed while '${name}' was running`, { function: name }));
  };
  closing.addEventListener('abort', onClose, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TimeoutError(
        ErrorCode.TIMEOUT,
        `'${name}' ran longer than its timeoutMs=${timeoutMs}; raise timeoutMs or give it less work`,
        {
          function: name,
          timeoutMs,
        },
      );
      controller.abort(err);
      reject(err);
    }, timeoutMs);
  });
  const run = (async () => {
    try {
      const result = await handler(input, { function: name, timeoutMs, signal: controller.signal });
      if (result instanceof Uint8Array) return { output: result, returnCode: 0 };
      if (
        result !== null &&
        typeof result === 'object' &&
        result.output instanceof Uint8Array &&
        (result.returnCode | 0) === result.returnCode
      ) {
        return { output: result.output, returnCode: result.returnCode };
      }
      throw new HandlerError(
        ErrorCode.HANDLER_FAILED,
        `handler '${name}' resolved with something other than a Uint8Array or { output, returnCode } (an i32)`,
        { function: name },
      );
    } catch (err) {
      if (err instanceof NuvolaError) throw err;
      throw new HandlerError(
        ErrorCode.HANDLER_FAILED,
        `handler '${name}' failed: ${err instanceof Error ? err.message : String(err)}`,
        { function: name },
        { cause: err },
      );
    }
  })();
  return Promise.race([run, expired, closed]).finally(() => {
    clearTimeout(timer);
    closing.removeEventListener('abort', onClose);
  });
}
