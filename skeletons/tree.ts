/**
 * Skeleton trees: the node types, their constructors, and the partitions and gathers that
 * split an item into parts and join results back. Pure data: nothing here runs anything.
 */
import { ErrorCode, SkeletonError } from '../runtime/index.js';
import { frame, unframe } from './frames.js';

/** A sequential composition of registered functions: `seq('f')`, or `seq('f', 'g')` = f then g. */
export interface Seq {
  readonly kind: 'seq';
  readonly fns: readonly string[];
  /** Declared by the user: some function keeps state between calls (it may not be replicated). */
  readonly stateful: boolean;
}

/** A pipeline: every item goes through the stages in order; stages work on different items at once. */
export interface Pipe {
  readonly kind: 'pipe';
  readonly stages: readonly Skeleton[];
}

/** A farm: up to `replicas` items go through `worker` at once. */
export interface Farm {
  readonly kind: 'farm';
  readonly worker: Skeleton;
  /**
   * Items in flight at once; `'auto'`: two per runtime worker, so that a worker has its next
   * item queued while the previous result travels back (no idle round trip between items).
   */
  readonly replicas: number | 'auto';
  /** Outputs in input order (default) or as they complete. */
  readonly ordered: boolean;
}

/** A map: an item is split into parts, `worker` runs on every part in parallel, the results are gathered. */
export interface MapNode {
  readonly kind: 'map';
  readonly worker: Skeleton;
  readonly partition: Partition;
  readonly gather: Gather;
}

/**
 * A reduction of a framed list of values with `fn`, which takes a framed list of values and
 * returns one value. `associative`: fn(xs ++ ys) = fn([fn(xs), fn(ys)]), so pieces may be
 * reduced in parallel; `commutative`: the order of the values does not matter either.
 */
export interface Reduce {
  readonly kind: 'reduce';
  readonly fn: string;
  readonly associative: boolean;
  readonly commutative: boolean;
}

/**
 * Keyed map-reduce: `mapper` turns each part into a framed list of key, value, key, value…;
 * values are grouped by key into `reducers` buckets; `reducer` gets a framed list of key,
 * framed(values), … and returns key, value, …; the output is every key and value, framed, in
 * key order (bytewise).
 */
export interface MapReduce {
  readonly kind: 'mapReduce';
  readonly mapper: string;
  readonly reducer: string;
  readonly partition: Partition;
  readonly reducers: number | 'auto';
}

/**
 * Divide and conquer: a problem for which `isBase` holds is solved by `base`; any other is
 * split by `divide` into a framed list of subproblems, solved recursively in parallel, and
 * the framed list of their results is joined by `combine`.
 */
export interface DivideConquer {
  readonly kind: 'dc';
  readonly divide: string;
  readonly combine: string;
  readonly base: string;
  readonly isBase: (problem: Uint8Array) => boolean;
  readonly maxDepth: number;
}

/** Iteration: `body` runs on its own output until `until` holds or `maxIterations` runs are done. */
export interface Iterate {
  readonly kind: 'iterate';
  readonly body: Skeleton;
  readonly until: (output: Uint8Array, iteration: number) => boolean;
  readonly maxIterations: number;
}

export type Skeleton = Seq | Pipe | Farm | MapNode | Reduce | MapReduce | DivideConquer | Iterate;

/** Splits an item into parts. `inverseOf` names the gather this partition exactly undoes. */
export interface Partition {
  readonly name: string;
  readonly split: (item: Uint8Array, workers: number) => Uint8Array[];
  readonly inverseOf?: string;
  /** How many parts an item of `bytes` gives, when the partition knows (the cost model asks). */
  readonly parts?: (bytes: number, workers: number) => number;
}

/** Joins the results of a map's parts back into one item. */
export type Gather =
  | { readonly kind: 'join'; readonly name: string; readonly join: (parts: Uint8Array[]) => Uint8Array }
  /** The framed list of results reduced with `reduce` as results arrive (map–reduce fusion makes it). */
  | { readonly kind: 'reduce'; readonly name: string; readonly reduce: Reduce };

function invalid(message: string, details: Record<string, unknown> = {}): SkeletonError {
  return new SkeletonError(ErrorCode.INVALID_SKELETON, message, details);
}

function checkName(name: unknown, where: string): string {
  if (typeof name !== 'string' || name.length === 0) throw invalid(`${where}: expected a function name, got ${JSON.stringify(name)}`);
  return name;
}

function checkSkeleton(node: unknown, where: string): Skeleton {
  const kinds = ['seq', 'pipe', 'farm', 'map', 'reduce', 'mapReduce', 'dc', 'iterate'];
  if (typeof node === 'string') return seq(node);
  if (node === null || typeof node !== 'object' || !kinds.includes((node as { kind?: string }).kind ?? '')) {
    throw invalid(`${where}: expected a skeleton (seq, pipe, farm, …) or a function name, got ${JSON.stringify(node)}`);
  }
  return node as Skeleton;
}

function positive(value: unknown, where: string, auto: boolean, max = 4096): number | 'auto' {
  if (auto && value === 'auto') return 'auto';
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw invalid(`${where} must be an integer from 1 to ${max}${auto ? " or 'auto'" : ''}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** `seq('f')`: one function; `seq('f', 'g')`: f, then g on f's output, as one task. */
export function seq(...args: [string, ...(string | { stateful?: boolean })[]]): Seq {
  const last = args[args.length - 1];
  const traits = typeof last === 'object' || last === undefined ? ((args.pop() as { stateful?: boolean } | null | undefined) ?? {}) : {};
  const fns = (args as unknown[]).map((name, i) => checkName(name, `seq argument ${i + 1}`));
  if (fns.length === 0) throw invalid('seq needs at least one function name');
  return { kind: 'seq', fns, stateful: traits.stateful === true };
}

/** A pipeline of stages (skeletons, or function names for `seq(name)`). */
export function pipe(...stages: (Skeleton | string)[]): Pipe {
  if (stages.length === 0) throw invalid('pipe needs at least one stage');
  return { kind: 'pipe', stages: stages.map((s, i) => checkSkeleton(s, `pipe stage ${i + 1}`)) };
}

export function farm(worker: Skeleton | string, options?: { replicas?: number | 'auto'; ordered?: boolean }): Farm {
  options ??= {};
  return {
    kind: 'farm',
    worker: checkSkeleton(worker, 'farm worker'),
    replicas: positive(options.replicas ?? 'auto', 'farm replicas', true),
    ordered: options.ordered ?? true,
  };
}

export function map(worker: Skeleton | string, options?: { partition?: Partition; gather?: Gather }): MapNode {
  options ??= {};
  const partition = options.partition ?? partitions.framed();
  const gather = options.gather ?? gathers.framed();
  if (typeof partition?.split !== 'function') throw invalid('map partition must be a Partition (see partitions.*)');
  if (gather?.kind !== 'join' && gather?.kind !== 'reduce') throw invalid('map gather must be a Gather (see gathers.*)');
  return { kind: 'map', worker: checkSkeleton(worker, 'map worker'), partition, gather };
}

export function reduce(fn: string, options?: { associative?: boolean; commutative?: boolean }): Reduce {
  options ??= {};
  const commutative = options.commutative ?? false;
  return { kind: 'reduce', fn: checkName(fn, 'reduce function'), associative: options.associative ?? false, commutative };
}

export function mapReduce(options: { mapper: string; reducer: string; partition?: Partition; reducers?: number | 'auto' }): MapReduce {
  if (options === null || typeof options !== 'object') throw invalid('mapReduce needs { mapper, reducer, partition?, reducers? }');
  return {
    kind: 'mapReduce',
    mapper: checkName(options.mapper, 'mapReduce mapper'),
    reducer: checkName(options.reducer, 'mapReduce reducer'),
    partition: options.partition ?? partitions.framed(),
    reducers: positive(options.reducers ?? 'auto', 'mapReduce reducers', true),
  };
}

export function dc(
  divide: string,
  combine: string,
  base: string,
  isBase: (problem: Uint8Array) => boolean,
  options?: { maxDepth?: number },
): DivideConquer {
  options ??= {};
  if (typeof isBase !== 'function') throw invalid('dc isBase must be a function (problem: Uint8Array) => boolean');
  return {
    kind: 'dc',
    divide: checkName(divide, 'dc divide'),
    combine: checkName(combine, 'dc combine'),
    base: checkName(base, 'dc base'),
    isBase,
    maxDepth: positive(options.maxDepth ?? 32, 'dc maxDepth', false) as number,
  };
}

export function iterate(
  body: Skeleton | string,
  options: { until?: (output: Uint8Array, iteration: number) => boolean; maxIterations: number },
): Iterate {
  if (options === null || typeof options !== 'object') throw invalid('iterate needs { maxIterations, until? }');
  if (options.until !== undefined && typeof options.until !== 'function') throw invalid('iterate until must be a function');
  return {
    kind: 'iterate',
    body: checkSkeleton(body, 'iterate body'),
    until: options.until ?? (() => false),
    maxIterations: positive(options.maxIterations, 'iterate maxIterations', false) as number,
  };
}

/** Items in flight per runtime worker for a farm with `replicas: 'auto'`. */
export const AUTO_REPLICAS_PER_WORKER = 2;

const LETTER = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c >= 128;

/**
 * Rules match partitions and gathers by name (map fusion needs `inverseOf` to name the
 * gather it undoes), so a custom one may not take a built-in's name.
 */
function checkCustomName(name: unknown, where: string): void {
  if (typeof name !== 'string' || name.length === 0) throw invalid(`${where}: a name is required`);
  if (/^(framed|concat|chunks|text|reduce)\b/.test(name)) {
    throw invalid(`${where}: '${name}' is a built-in's name; pick another (rules tell partitions and gathers apart by name)`);
  }
}

/** Built-in partitions. */
export const partitions = {
  /** The item is a framed list; its parts are the parts. Undoes `gathers.framed()`. */
  framed(): Partition {
    return { name: 'framed', split: (item) => unframe(item, 'a map item'), inverseOf: 'framed' };
  },
  /**
   * `count` parts of nearly equal size (default: one per worker), cut at multiples of `align`
   * bytes (a record size). Undoes nothing: concatenating results and cutting again need not
   * give the same parts.
   */
  chunks(count: number | 'workers' = 'workers', align = 1): Partition {
    if (count !== 'workers') positive(count, 'chunks count', false);
    positive(align, 'chunks align', false);
    return {
      name: `chunks(${String(count)},${align})`,
      parts: (_bytes, workers) => (count === 'workers' ? workers : count),
      split: (item, workers) => {
        const n = count === 'workers' ? workers : count;
        const records = Math.floor(item.byteLength / align);
        if (records * align !== item.byteLength) {
          throw invalid(`chunks: an item of ${item.byteLength} bytes is not a whole number of ${align}-byte records`);
        }
        const parts: Uint8Array[] = [];
        for (let i = 0; i < n; i++) {
          const from = Math.floor((records * i) / n) * align;
          const to = Math.floor((records * (i + 1)) / n) * align;
          if (to > from) parts.push(item.subarray(from, to));
        }
        return parts.length > 0 ? parts : [item];
      },
    };
  },
  /**
   * Text cut between words, never inside one: into `count` pieces (default: one per worker),
   * or into pieces of about `pieceBytes` each — fixed-size pieces keep a mapper's input the
   * same size whatever the text's (as Hadoop's splits do), so a calibration on a shorter text
   * holds for a longer one.
   */
  text(count: number | 'workers' | { pieceBytes: number } = 'workers'): Partition {
    const pieceBytes =
      typeof count === 'object' && count !== null ? (positive(count.pieceBytes, 'text pieceBytes', false, 2 ** 31) as number) : undefined;
    if (pieceBytes === undefined && count !== 'workers') positive(count, 'text count', false);
    const pieces = (bytes: number, workers: number): number =>
      pieceBytes !== undefined ? Math.max(1, Math.ceil(bytes / pieceBytes)) : count === 'workers' ? workers : (count as number);
    return {
      name: pieceBytes !== undefined ? `text(${pieceBytes} bytes)` : `text(${String(count)})`,
      parts: pieces,
      split: (item, workers) => {
        const n = pieces(item.byteLength, workers);
        const parts: Uint8Array[] = [];
        let from = 0;
        for (let i = 1; i <= n && from < item.byteLength; i++) {
          let to = i === n ? item.byteLength : Math.max(from, Math.floor((item.byteLength * i) / n));
          while (to < item.byteLength && to > 0 && LETTER(item[to - 1]!) && LETTER(item[to]!)) to++;
          if (to > from) parts.push(item.subarray(from, to));
          from = to;
        }
        return parts.length > 0 ? parts : [item];
      },
    };
  },
  /** Your own partition; name it, and say which gather (by name) it exactly undoes, if any. */
  custom(name: string, split: (item: Uint8Array, workers: number) => Uint8Array[], inverseOf?: string): Partition {
    if (typeof split !== 'function') throw invalid('partitions.custom: split must be a function');
    checkCustomName(name, 'partitions.custom');
    return inverseOf === undefined ? { name, split } : { name, split, inverseOf };
  },
};

/** Built-in gathers. */
export const gathers = {
  /** The results as a framed list, in part order. */
  framed(): Gather {
    return { kind: 'join', name: 'framed', join: (parts) => frame(parts) };
  },
  /** The results concatenated, in part order. */
  concat(): Gather {
    return {
      kind: 'join',
      name: 'concat',
      join: (parts) => {
        const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
        let at = 0;
        for (const p of parts) {
          out.set(p, at);
          at += p.byteLength;
        }
        return out;
      },
    };
  },
  /** The framed list of results reduced with `r` — what map–reduce fusion produces. */
  reduce(r: Reduce): Gather {
    return { kind: 'reduce', name: `reduce(${r.fn})`, reduce: r };
  },
  custom(name: string, join: (parts: Uint8Array[]) => Uint8Array): Gather {
    if (typeof join !== 'function') throw invalid('gathers.custom: join must be a function');
    checkCustomName(name, 'gathers.custom');
    return { kind: 'join', name, join };
  },
};

/** Every function a skeleton names, each once. */
export function functionsOf(node: Skeleton, into = new Set<string>()): Set<string> {
  switch (node.kind) {
    case 'seq':
      for (const fn of node.fns) into.add(fn);
      break;
    case 'pipe':
      for (const stage of node.stages) functionsOf(stage, into);
      break;
    case 'farm':
    case 'iterate':
      functionsOf(node.kind === 'farm' ? node.worker : node.body, into);
      break;
    case 'map':
      functionsOf(node.worker, into);
      if (node.gather.kind === 'reduce') into.add(node.gather.reduce.fn);
      break;
    case 'reduce':
      into.add(node.fn);
      break;
    case 'mapReduce':
      into.add(node.mapper).add(node.reducer);
      break;
    case 'dc':
      into.add(node.divide).add(node.combine).add(node.base);
      break;
  }
  return into;
}
