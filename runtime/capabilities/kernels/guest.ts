/**
 * Worker thread. Host imports of module `nuvola:kernels`: a guest calling GPU kernels. The
 * arrays are copied out of guest memory, the call goes to the main thread's kernels (kernels/,
 * one device per process, callers taken in turn by function name), and the result is written
 * back into guest memory. Every import suspends the guest while the kernel runs; the worker
 * goes on serving other instances.
 */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { ErrorCode, GuestError, KernelError, makeError } from '../../errors.js';
import { guestBytes, guestWritable, type ContextRef, type GuestContext } from '../context.js';
import { guestCapability } from '../capability.js';
import type { Answer, RpcClient } from '../../rpc.js';
import type { GuestKernelCall, KernelsApi } from './api.js';
import { unframe } from '../../frames.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Most floats one argument may have (1 GiB): more could not be in a 32-bit memory anyway. */
const MAX_FLOATS = 2 ** 28;

/** The bytes of `n` f32s at `ptr` in the guest's memory (bounds-checked). */
function floatBytes(ctx: GuestContext, ptr: number, n: number, what: string): Uint8Array {
  const count = n >>> 0;
  if (count >= MAX_FLOATS) {
    throw new GuestError(ErrorCode.GUEST_POINTER, `function '${ctx.fn}' passed ${what} ${count} floats: a range outside its memory`, {
      function: ctx.fn,
      import: what,
      length: count,
    });
  }
  return guestBytes(ctx, ptr, count * 4, what);
}

/** A copy of `n` f32s at `ptr` in the guest's memory (bounds-checked). */
function floats(ctx: GuestContext, ptr: number, n: number, what: string): Float32Array {
  return new Float32Array(floatBytes(ctx, ptr, n, what).slice().buffer);
}

/** Writes `values` to `ptr` (which must hold `expected` floats). */
function writeFloats(ctx: GuestContext, ptr: number, values: Float32Array, expected: number, what: string): void {
  if (!(values instanceof Float32Array) || values.length !== expected) {
    throw new GuestError(ErrorCode.GUEST_TRAP, `${what}: the kernel gave ${values.length} values for an output of ${expected}`);
  }
  guestWritable(ctx, ptr, values.byteLength, what).set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

/** What the worker gives kernels: its line to them (kernels/port.ts). */
export type KernelsDeps = Pick<RpcClient<KernelsApi>, 'call'>;

const unavailable: KernelsDeps = {
  call: () => Promise.reject(new Error('kernels are not available in this thread')),
};

/** A kernel call for the instance; its time counts in the call's usage. Holds no state lock. */
function call<M extends keyof KernelsApi & string>(
  channel: KernelsDeps,
  ctx: GuestContext,
  method: M,
  ...args: Parameters<KernelsApi[M]>
): Promise<Answer<KernelsApi, M>> {
  const start = performance.now();
  const meter = ctx.meter;
  return channel.call(method, ...args).finally(() => {
    meter.kernelMs += performance.now() - start;
  });
}

/** The framed list of byte strings at ptr/len, as f32 arrays (copies: guest memory moves on). */
function framedFloats(ctx: GuestContext, ptr: number, len: number): Float32Array[] {
  const bad = (): GuestError =>
    new GuestError(ErrorCode.GUEST_TRAP, `function '${ctx.fn}' passed kernels.run inputs that are not a framed list of f32 arrays`);
  return unframe(guestBytes(ctx, ptr, len, 'kernels.run'), bad).map((part) => {
    if (part.byteLength % 4 !== 0) throw bad();
    return new Float32Array(part.slice().buffer);
  });
}

export default guestCapability<undefined, KernelsDeps>({
  bind(ref: ContextRef, _slot, channel = unavailable) {
    const elementwise =
      (method: 'addF32' | 'mulF32') =>
      (x: number, y: number, n: number, out: number): Promise<void> => {
        const ctx = ref.ctx;
        const what = `kernels.${method}`;
        floatBytes(ctx, out, n, what);
        return call(channel, ctx, method, ctx.fn, floats(ctx, x, n, what), floats(ctx, y, n, what)).then((r) =>
          writeFloats(ctx, out, r, n >>> 0, what),
        );
      };
    return {
      [abi.KERNELS_AVAILABLE]: (): Promise<number> => call(channel, ref.ctx, 'available', ref.ctx.fn).then((ok) => (ok === true ? 1 : 0)),
      [abi.KERNELS_MATMUL_F32]: (a: number, b: number, m: number, k: number, n: number, out: number): Promise<void> => {
        const ctx = ref.ctx;
        const what = 'kernels.matmulF32';
        // Sizes checked by the kernels (E_KERNEL_ARGS); here only that the ranges are in memory,
        // the output's included: a result the guest has no room for is never computed (a 64 KiB
        // guest could otherwise have the device and the main thread make a 128 MiB one).
        const mm = m >>> 0;
        const kk = k >>> 0;
        const nn = n >>> 0;
        if (mm * kk > 2 ** 28 || kk * nn > 2 ** 28 || mm * nn > 2 ** 28) {
          return Promise.reject(makeError(ErrorCode.KERNEL_ARGS, `${what}: ${mm}×${kk} by ${kk}×${nn} is too large`));
        }
        floatBytes(ctx, out, mm * nn, what);
        return call(channel, ctx, 'matmulF32', ctx.fn, floats(ctx, a, mm * kk, what), floats(ctx, b, kk * nn, what), mm, kk, nn).then((r) =>
          writeFloats(ctx, out, r, mm * nn, what),
        );
      },
      [abi.KERNELS_SAXPY_F32]: (alpha: number, x: number, y: number, n: number, out: number): Promise<void> => {
        const ctx = ref.ctx;
        const what = 'kernels.saxpyF32';
        floatBytes(ctx, out, n, what);
        return call(channel, ctx, 'saxpyF32', ctx.fn, alpha, floats(ctx, x, n, what), floats(ctx, y, n, what)).then((r) =>
          writeFloats(ctx, out, r, n >>> 0, what),
        );
      },
      [abi.KERNELS_ADD_F32]: elementwise('addF32'),
      [abi.KERNELS_MUL_F32]: elementwise('mulF32'),
      [abi.KERNELS_SUM_F32]: (x: number, n: number): Promise<number> =>
        call(channel, ref.ctx, 'sumF32', ref.ctx.fn, floats(ref.ctx, x, n, 'kernels.sumF32')),
      [abi.KERNELS_MAX_F32]: (x: number, n: number): Promise<number> =>
        call(channel, ref.ctx, 'maxF32', ref.ctx.fn, floats(ref.ctx, x, n, 'kernels.maxF32')),
      [abi.KERNELS_SCAN_F32]: (x: number, n: number, out: number): Promise<void> => {
        const ctx = ref.ctx;
        floatBytes(ctx, out, n, 'kernels.scanF32');
        return call(channel, ctx, 'scanF32', ctx.fn, floats(ctx, x, n, 'kernels.scanF32')).then((r) =>
          writeFloats(ctx, out, r, n >>> 0, 'kernels.scanF32'),
        );
      },
      [abi.KERNELS_CONV2D_F32]: (img: number, h: number, w: number, kernel: number, kh: number, kw: number, out: number): Promise<void> => {
        const ctx = ref.ctx;
        const what = 'kernels.conv2dF32';
        const size = (h >>> 0) * (w >>> 0);
        if (size > 2 ** 28)
          return Promise.reject(new KernelError(ErrorCode.KERNEL_ARGS, `${what}: an image of ${h >>> 0}×${w >>> 0} is too large`));
        floatBytes(ctx, out, size, what);
        return call(
          channel,
          ctx,
          'conv2dF32',
          ctx.fn,
          floats(ctx, img, size, what),
          h >>> 0,
          w >>> 0,
          floats(ctx, kernel, (kh >>> 0) * (kw >>> 0), what),
          kh >>> 0,
          kw >>> 0,
        ).then((r) => writeFloats(ctx, out, r, size, what));
      },
      [abi.KERNELS_RUN]: (
        namePtr: number,
        nameLen: number,
        inputs: number,
        inputsLen: number,
        params: number,
        paramsLen: number,
        gx: number,
        gy: number,
        gz: number,
        out: number,
        outLen: number,
      ): Promise<void> => {
        const ctx = ref.ctx;
        let name: string;
        try {
          name = decoder.decode(guestBytes(ctx, namePtr, nameLen, 'kernels.run'));
        } catch (err) {
          if (err instanceof TypeError)
            throw new GuestError(ErrorCode.GUEST_TRAP, `function '${ctx.fn}' passed kernels.run a name that is not UTF-8`);
          throw err;
        }
        if (paramsLen >>> 0 > 1024) throw makeError(ErrorCode.KERNEL_ARGS, `function '${ctx.fn}' passed kernels.run more than 1024 params`);
        const u32s = new Uint32Array(guestBytes(ctx, params, (paramsLen >>> 0) * 4, 'kernels.run').slice().buffer);
        const spec: GuestKernelCall = {
          inputs: framedFloats(ctx, inputs, inputsLen),
          outputLength: outLen >>> 0,
          params: u32s,
          workgroups: [gx >>> 0, gy >>> 0, gz >>> 0],
        };
        floatBytes(ctx, out, outLen, 'kernels.run');
        return call(channel, ctx, 'runKernel', ctx.fn, name, spec).then((r) => writeFloats(ctx, out, r, outLen >>> 0, 'kernels.run'));
      },
    };
  },
});
