/**
 * Worker thread. A WASI instance's per-call state: stdio (stdin is the invocation's input,
 * stdout its output or log lines, stderr log lines) and the descriptor table, cleared by
 * `endCall`.
 */
import { logLine, type GuestContext } from '../context.js';
import { newFdTable, resetFdTable, type FdTable, type FileBudget, type WasiConfig } from './fd-table.js';

/** Per-instance WASI state; `endCall` clears what a call leaves. */
export interface WasiState {
  config: WasiConfig;
  /** Whether stdout is the call's output (a WASI command) or log lines (an SDK guest). */
  stdoutIsOutput: boolean;
  stdinPos: number;
  stdout: Uint8Array[];
  stdoutBytes: number;
  /** Unterminated last line of stderr (and of stdout when it is logged), at most the log budget. */
  pending: [string, string];
  /** Streaming decoders, so a UTF-8 sequence split across writes decodes whole. */
  decoders: [TextDecoder, TextDecoder];
  fds: FdTable;
}

/** `budget`: the process-wide count of WASI host descriptors, as this thread sees it. */
export function newWasiState(config: WasiConfig, stdoutIsOutput: boolean, budget: FileBudget): WasiState {
  return {
    config,
    stdoutIsOutput,
    stdinPos: 0,
    stdout: [],
    stdoutBytes: 0,
    pending: ['', ''],
    decoders: [new TextDecoder(), new TextDecoder()],
    fds: newFdTable(config, budget),
  };
}

/** Ends a call: closes the host descriptors it held, flushes partial log lines, and returns its stdout. */
export function endCall(ctx: GuestContext, wasi: WasiState): Uint8Array | undefined {
  wasi.fds = resetFdTable(wasi.fds, wasi.config);
  for (const stream of [0, 1] as const) {
    const rest = wasi.pending[stream] + wasi.decoders[stream].decode();
    if (rest !== '') logLine(ctx, rest);
    wasi.pending[stream] = '';
  }
  wasi.stdinPos = 0;
  const chunks = wasi.stdout;
  const total = wasi.stdoutBytes;
  wasi.stdout = [];
  wasi.stdoutBytes = 0;
  if (!wasi.stdoutIsOutput) return undefined;
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/**
 * Appends text written to a logged stream, emitting each complete line. Only the new bytes are
 * searched for newlines, and an unterminated line longer than the log budget left is emitted
 * (truncated) at once, so a guest writing without newlines costs neither memory nor time.
 */
export function logText(ctx: GuestContext, wasi: WasiState, stream: 0 | 1, bytes: Uint8Array): void {
  if (ctx.logBudget <= 0) return;
  const text = wasi.decoders[stream].decode(bytes, { stream: true });
  let start = 0;
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
    logLine(ctx, wasi.pending[stream] + text.slice(start, nl));
    wasi.pending[stream] = '';
    start = nl + 1;
  }
  wasi.pending[stream] += text.slice(start);
  if (wasi.pending[stream].length > ctx.logBudget) {
    logLine(ctx, wasi.pending[stream]);
    wasi.pending[stream] = '';
  }
}
