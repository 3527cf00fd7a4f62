/**
 * Both threads. A typed request/response layer over a port. An API is an interface of methods
 * (arguments → result); a request names one method with its arguments, so both ends check
 * them against the same declaration; the serving end implements every method (a missing one
 * does not compile) and the calling end gets each method's own result type.
 */
import { fromWire, type WireError } from './errors.js';

/** Methods by name: what each takes and what it answers (the answer, not a promise of it). */
export type Api<A> = { [M in keyof A]: (...args: never[]) => unknown };

/** One call of a method of `A`, as it crosses the thread. */
export type Request<A extends Api<A>> = { [M in keyof A & string]: { method: M; args: Parameters<A[M]> } }[keyof A & string];

/** What a method of `A` answers. */
export type Answer<A extends Api<A>, M extends keyof A> = Awaited<ReturnType<A[M]>>;

/** The serving end: every method of `A`, answering now or later. */
export type Service<A extends Api<A>> = { [M in keyof A]: (...args: Parameters<A[M]>) => Answer<A, M> | Promise<Answer<A, M>> };

/** Carries out `request` on `service`; a throw becomes a rejection. */
export function serve<A extends Api<A>>(service: Service<A>, request: Request<A>): Promise<unknown> {
  try {
    const method = service[request.method] as (...args: unknown[]) => unknown;
    return Promise.resolve(method(...(request.args as unknown[])));
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

/** The id of a notice: a request that wants no answer (see {@link RpcClient.notify}). */
export const NOTICE = 0;

/** A reply to the request numbered `id`. */
export interface Reply {
  id: number;
  value?: unknown;
  error?: WireError;
}

/** The calling end: numbers each request, sends it, and settles it when its reply comes. */
export class RpcClient<A extends Api<A>> {
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (err: unknown) => void }>();
  private nextId = 1;

  constructor(private readonly send: (id: number, request: Request<A>) => void) {}

  /** Requests not answered yet. */
  get pending(): number {
    return this.waiting.size;
  }

  call<M extends keyof A & string>(method: M, ...args: Parameters<A[M]>): Promise<Answer<A, M>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.send(id, { method, args } as Request<A>);
    });
  }

  /** Sends a request that wants no answer (a method answering `void`); its failure stays on the serving end. */
  notify<M extends keyof A & string>(method: M, ...args: Parameters<A[M]>): void {
    this.send(NOTICE, { method, args } as Request<A>);
  }

  /** Settles a request with its reply; a reply to no request (a call from an earlier incarnation) is dropped. */
  settle(reply: Reply): void {
    const waiter = this.waiting.get(reply.id);
    if (waiter === undefined) return;
    this.waiting.delete(reply.id);
    if (reply.error !== undefined) waiter.reject(fromWire(reply.error));
    else waiter.resolve(reply.value);
  }
}

/**
 * The `default` of a switch over a message union: it does not compile while a type is not
 * handled, and a message of no known type (from a mismatched build) fails loudly.
 */
export function unknownMessage(message: never): never {
  throw new Error(`nuvola: a message of unknown type ${JSON.stringify((message as { type?: unknown }).type)}`);
}
