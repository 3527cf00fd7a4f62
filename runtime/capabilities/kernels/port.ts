/**
 * Worker thread. A worker's line to the kernel thread: its guests' kernel calls go straight
 * there and back (two thread crossings), not through the main thread. The line is asked of
 * the main thread on first use (`connect`) and again after the kernel thread was replaced.
 * A registered kernel the device cannot run comes back with its arrays, and goes to the main
 * thread, which holds the kernel's CPU version.
 */
import type { MessagePort } from 'node:worker_threads';
import { ErrorCode, fromWire } from '../../errors.js';
import type { Answer, RpcClient } from '../../rpc.js';
import { ownedBuffers } from '../../transfer.js';
import type { ConnectionNotice } from '../../../kernels/index.js';
import type { KernelReply, KernelRequest } from '../../../kernels/wire.js';
import type { KernelsApi } from './api.js';

interface Line {
  port: MessagePort;
  control: MessagePort;
  /** The thread is being replaced: no new calls here; open until its calls are answered. */
  stale: boolean;
  calls: Set<number>;
}

interface Call {
  op: string;
  caller: string;
  args: unknown[];
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  line?: Line;
}

type Host = Pick<RpcClient<KernelsApi>, 'call'>;

export class KernelLine {
  private line: Promise<Line> | undefined;
  /** The line `line` resolved to. */
  private current: Line | undefined;
  private readonly calls = new Map<number, Call>();
  private nextId = 1;

  /** `host`: the main thread's kernels service. */
  constructor(private readonly host: Host) {}

  /** Calls not answered yet. */
  get pending(): number {
    return this.calls.size;
  }

  call<M extends keyof KernelsApi & string>(method: M, ...args: Parameters<KernelsApi[M]>): Promise<Answer<KernelsApi, M>> {
    if (method === 'connect') return this.host.call(method, ...args);
    const [caller, ...rest] = args as unknown as [string, ...unknown[]];
    return new Promise((resolve, reject) =>
      this.send({ op: method, caller, args: rest, resolve: resolve as (value: unknown) => void, reject }),
    );
  }

  private send(call: Call): void {
    this.open().then(
      (line) => {
        const id = this.nextId++;
        call.line = line;
        line.calls.add(id);
        this.calls.set(id, call);
        // The arrays are fresh copies of guest memory: moved to the kernel thread, not copied.
        line.port.postMessage({ id, op: call.op, args: call.args, caller: call.caller } satisfies KernelRequest, ownedBuffers(call.args));
      },
      (err: unknown) => call.reject(err),
    );
  }

  private open(): Promise<Line> {
    this.line ??= this.host.call('connect').then(
      ({ port, control }) => {
        const line: Line = { port, control, stale: false, calls: new Set() };
        port.on('message', (reply: KernelReply) => this.onReply(line, reply));
        control.on('message', (notice: ConnectionNotice) => this.onNotice(line, notice));
        port.unref();
        control.unref();
        this.current = line;
        return line;
      },
      (err: unknown) => {
        this.line = undefined;
        throw err;
      },
    );
    return this.line;
  }

  private take(line: Line, id: number): Call | undefined {
    const call = this.calls.get(id);
    this.calls.delete(id);
    line.calls.delete(id);
    if (line.stale && line.calls.size === 0) close(line);
    return call;
  }

  private onReply(line: Line, reply: KernelReply): void {
    if ('ready' in reply) return;
    const call = this.take(line, reply.id);
    if (call === undefined) return;
    if ('retry' in reply) return this.send({ ...call, args: reply.args });
    if (reply.ok) return call.resolve(reply.value);
    const { code } = reply.error;
    if (reply.args !== undefined && (code === ErrorCode.KERNEL_UNAVAILABLE || code === ErrorCode.KERNEL_UNKNOWN)) {
      const [name, spec] = reply.args as Parameters<KernelsApi['runKernel']> extends [string, ...infer R] ? R : never;
      this.host.call('runKernel', call.caller, name, spec).then(call.resolve, call.reject);
      return;
    }
    call.reject(fromWire(reply.error));
  }

  private onNotice(line: Line, notice: ConnectionNotice): void {
    if ('expired' in notice) {
      this.take(line, notice.expired)?.reject(fromWire(notice.error));
      return;
    }
    if (this.current === line) {
      this.current = undefined;
      this.line = undefined;
    }
    line.stale = true;
    if ('lost' in notice) {
      for (const id of [...line.calls]) this.take(line, id)?.reject(fromWire(notice.error));
    }
    if (line.calls.size === 0) close(line);
  }
}

function close(line: Line): void {
  line.port.close();
  line.control.close();
}
