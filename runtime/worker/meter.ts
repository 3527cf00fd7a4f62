/**
 * Any thread. A call's CPU time, measured in slices, and what the pool reads of the running
 * slice to enforce `cpuLimitMs`.
 *
 * A call's CPU time is the sum of its slices: from when it starts (or resumes after a
 * suspension) to when it suspends (or ends). Time suspended in a host call is in no slice. A
 * slice under a millisecond counts its wall time (the thread is on the CPU for all of it but
 * what the OS takes away). A longer one is measured with the worker thread's CPU clock
 * (`process.threadCpuUsage()`, read at most once a millisecond), capped at its wall time. That
 * clock is what getrusage(RUSAGE_THREAD) reports, which Linux brings up to date only at
 * scheduler ticks (every 1–4 ms) and switches: a reading may lag by up to a tick — too coarse
 * for short slices, and a reading costs more than a warm call. JSPI runs the
 * resume hooks of all the instances a turn made ready before the first of them continues, so
 * a slice starts at its resume hook or at the end of the slice before it, whichever is later.
 *
 * The pool cannot read another thread's CPU clock: the worker publishes, in words after the
 * interrupt word (the same shared page), the call whose slice runs, the wall time of its
 * finished slices, and when the running slice began on the wall clock. A thread uses no more
 * CPU than wall time, so together they bound the call's CPU from above — exactly when the
 * thread keeps its core, more when the machine is oversubscribed. (Not the measured CPU of the
 * finished slices: it lags, and a guest can make it lag on purpose; see slicesWall.)
 */
import type { CallMeter } from '../capabilities/context.js';
import type { Interrupt } from './interrupt.js';

/** Int32 words of the interrupt page after the interrupt word itself. */
const Word = {
  /** The id of a call the pool stopped for its CPU limit (set before the interrupt word). */
  CPU_STOPPED: 1,
  /** The call whose slice is published. */
  OWNER: 2,
  /**
   * An upper bound on the CPU of its finished slices, in µs (saturates at 2^31 - 1): their wall
   * time. Not their measured CPU, which lags (see {@link slicesWall}).
   */
  CPU_MICROS: 3,
  /** {@link wallMicros} when the running slice began. */
  SLICE_AT: 4,
} as const;

/** No slice is running for the call. */
const OFF = -1;

const views = new WeakMap<Interrupt, Int32Array>();

/**
 * Per call, the wall time of its finished slices, in µs: what the pool's bound adds up. The
 * measured CPU cannot serve there: a slice shorter than a tick that ends in a suspension (the
 * thread then blocks, and its clock catches up only at that switch, after the slice's last
 * reading) reads almost 0, so a guest alternating ~1 ms bursts with `sleep(1)` read at a
 * fraction of its CPU and ran several times past `cpuLimitMs`.
 */
const slicesWall = new WeakMap<CallMeter, number>();

/** The page's first words (the interrupt word is word 0). */
function wordsOf(interrupt: Interrupt): Int32Array {
  let words = views.get(interrupt);
  if (words === undefined) {
    words = new Int32Array(interrupt.memory.buffer, 0, 8);
    views.set(interrupt, words);
  }
  return words;
}

/**
 * The wall clock in µs, wrapped to an Int32 (differences taken with `| 0`); comparable between
 * threads (performance.timeOrigin + performance.now(), like protocol.ts's wallClock).
 */
function wallMicros(now = performance.now()): number {
  return ((performance.timeOrigin + now) * 1000) | 0;
}

/** The worker thread's CPU time (user and system), in µs. */
export function threadCpuMicros(): number {
  const { user, system } = process.threadCpuUsage();
  return user + system;
}

/**
 * A slice shorter than this (µs of wall time) counts its wall time as its CPU. The thread CPU
 * clock cannot resolve it (Linux brings it up to date only at ticks and switches), and reading
 * it costs more than a warm call does (getrusage: ~0.5–0.8 µs here, twice per call doubled
 * the cost of a warm call): a short slice on the worker's CPU is read off the cheap wall clock.
 */
const SHORT_SLICE_US = 1000;
/** A reading of the CPU clock older than this (ms) is taken again when a slice starts. */
const STALE_MS = 1;

/** The last reading of the thread CPU clock (µs) and `performance.now()` then. */
let lastRead = 0;
let lastReadWall = -Infinity;
/** Thread CPU time when the last long slice on this thread ended (µs). */
let lastEnd = 0;
/** `performance.now()` when the last slice ended. */
let lastEndWall = 0;

/** A slice of call `id` begins: on the worker's CPU from now. */
export function startSlice(meter: CallMeter, id: number, interrupt: Interrupt): void {
  const wall = performance.now();
  // At most one reading per millisecond: a long slice's CPU is then measured from at most a
  // millisecond before it began, and capped at its wall time.
  if (wall - lastReadWall > STALE_MS) {
    lastRead = threadCpuMicros();
    lastReadWall = wall;
  }
  meter.sliceStart = lastRead;
  meter.sliceWall = wall;
  const words = wordsOf(interrupt);
  Atomics.store(words, Word.CPU_MICROS, Math.min(0x7fffffff, Math.round(slicesWall.get(meter) ?? 0)));
  Atomics.store(words, Word.SLICE_AT, wallMicros(wall));
  Atomics.store(words, Word.OWNER, id);
}

/** The running slice of the call ends (it suspended, returned or trapped); a second call adds nothing. */
export function endSlice(meter: CallMeter, id: number, interrupt: Interrupt): void {
  if (meter.sliceStart === OFF) return;
  const wallNow = performance.now();
  const sliceUs = (wallNow - meter.sliceWall) * 1000;
  // From its resume, or from the end of the slice before it (resume hooks run in a batch).
  const ownUs = (wallNow - Math.max(meter.sliceWall, lastEndWall)) * 1000;
  if (sliceUs < SHORT_SLICE_US) {
    meter.cpuMicros += Math.max(0, ownUs);
  } else {
    const now = threadCpuMicros();
    lastRead = now;
    lastReadWall = wallNow;
    meter.cpuMicros += Math.min(sliceUs, Math.max(0, now - Math.max(meter.sliceStart, lastEnd)));
    lastEnd = now;
  }
  slicesWall.set(meter, (slicesWall.get(meter) ?? 0) + ownUs);
  meter.sliceStart = OFF;
  lastEndWall = wallNow;
  // Another call's resume hook already published its slice: it runs from now.
  const words = wordsOf(interrupt);
  if (Atomics.load(words, Word.OWNER) !== id) Atomics.store(words, Word.SLICE_AT, wallMicros(wallNow));
}

/**
 * Pool side: an upper bound on the CPU call `id` has used, in µs, when the worker published it
 * as the call on its CPU; undefined otherwise.
 */
export function cpuBound(interrupt: Interrupt, id: number): number | undefined {
  const words = wordsOf(interrupt);
  if (Atomics.load(words, Word.OWNER) !== id) return undefined;
  const finished = Atomics.load(words, Word.CPU_MICROS);
  const running = (wallMicros() - Atomics.load(words, Word.SLICE_AT)) | 0;
  return finished + Math.max(0, running);
}

/** Pool side: stops call `id` at its next check, as over its CPU limit. */
export function stopForCpu(interrupt: Interrupt, id: number): void {
  const words = wordsOf(interrupt);
  Atomics.store(words, Word.CPU_STOPPED, id);
  Atomics.store(words, 0, id);
}

/**
 * Pool side: call `id` has settled. A stop left naming it (the call ended before its next
 * check) must not mark a later call with the same id — ids repeat — as stopped for its CPU.
 */
export function clearCpuStop(interrupt: Interrupt, id: number): void {
  Atomics.compareExchange(wordsOf(interrupt), Word.CPU_STOPPED, id, 0);
}

/** Whether the interrupt that stopped call `id` was for its CPU limit. */
export function stoppedForCpu(interrupt: Interrupt, id: number): boolean {
  return id !== 0 && Atomics.load(wordsOf(interrupt), Word.CPU_STOPPED) === id;
}
