/**
 * Rewriting rules: each turns a skeleton into an equivalent one (same outputs for the same
 * inputs) when its side condition holds, and refuses with `E_REWRITE_REFUSED` — naming the
 * condition — when it does not. `normalize` applies them to reach the normal form (one farm
 * around a sequential composition where the stages allow it); `explain` prints a tree.
 * Pure: the runtime is only asked which functions keep state.
 */
import { ErrorCode, SkeletonError, type Runtime } from '../runtime/index.js';
import { registeredSkeleton } from './registry.js';
import { farm, gathers, map, pipe, seq, type Farm, type MapNode, type Skeleton } from './tree.js';

export type RuleName = 'pipeFlatten' | 'fusion' | 'farmIntro' | 'farmElim' | 'farmPipe' | 'mapFusion' | 'mapReduceFusion';

/** The rules, with the side condition each checks. */
export const RULES: Record<RuleName, { form: string; condition: string }> = {
  pipeFlatten: { form: 'pipe(a, pipe(b, c)) → pipe(a, b, c)', condition: 'none: a pipeline is associative' },
  fusion: {
    form: 'pipe(seq f, seq g) → seq(f; g)',
    condition: 'every stage is a seq: a seq stage takes items one at a time in order, as the fused seq does',
  },
  farmIntro: {
    form: 's → farm(s)',
    condition: 's is stateless: replicas see different items, so no function may keep state between calls',
  },
  farmElim: { form: 'farm(s) → s', condition: 's is stateless: one instance would see every item where each replica saw some' },
  farmPipe: {
    form: 'pipe(farm a, farm b) → farm(pipe(a, b))',
    condition: 'a and b are stateless; the result is ordered only if both farms were',
  },
  mapFusion: {
    form: 'pipe(map(f, P, G), map(g, P2, G2)) → map(pipe(f, g), P, G2)',
    condition: "P2 exactly undoes G (the second map's parts are the first map's results), e.g. gathers.framed then partitions.framed",
  },
  mapReduceFusion: {
    form: 'pipe(map(f, P, framed), reduce(r)) → map(f, P, reduce(r))',
    condition:
      'r is associative (pieces are reduced as results arrive; commutative too for any arrival order) and the map gathers a framed list',
  },
};

/** What the rules may ask: which functions keep state, how many workers there are. */
export interface RewriteContext {
  /** Functions registered with `reuse: 'keep'` here keep state. */
  rt?: Runtime;
  /** Extra names to treat as stateful. */
  stateful?: Iterable<string>;
}

function refuse(rule: RuleName, why: string): SkeletonError {
  return new SkeletonError(ErrorCode.REWRITE_REFUSED, `rewrite ${rule} (${RULES[rule].form}) refused: ${why}`, {
    rule,
    condition: RULES[rule].condition,
  });
}

/** The functions of `node` that keep state between calls, per the context. */
export function statefulFunctions(node: Skeleton, ctx: RewriteContext = {}, inside = new Set<string>()): string[] {
  const declared = new Set(ctx.stateful ?? []);
  const found = new Set<string>();
  const known = ctx.rt === undefined ? new Set<string>() : new Set(ctx.rt.functions());
  const visit = (n: Skeleton): void => {
    switch (n.kind) {
      case 'seq':
        for (const fn of n.fns) {
          if (n.stateful || declared.has(fn)) found.add(fn);
          if (ctx.rt === undefined || !known.has(fn)) continue;
          if (ctx.rt.describe(fn).reuse === 'keep') found.add(fn);
          // A registered skeleton is as stateful as what it runs.
          const registered = registeredSkeleton(ctx.rt, fn);
          if (registered !== undefined && !inside.has(fn)) {
            inside.add(fn);
            if (statefulFunctions(registered, ctx, inside).length > 0) found.add(fn);
          }
        }
        return;
      case 'pipe':
        n.stages.forEach(visit);
        return;
      case 'farm':
        visit(n.worker);
        return;
      case 'map':
        visit(n.worker);
        if (n.gather.kind === 'reduce') visit(seq(n.gather.reduce.fn));
        return;
      case 'iterate':
        visit(n.body);
        return;
      case 'reduce':
        visit(seq(n.fn));
        return;
      case 'mapReduce':
        visit(seq(n.mapper));
        visit(seq(n.reducer));
        return;
      case 'dc':
        for (const fn of [n.divide, n.combine, n.base]) visit(seq(fn));
        return;
    }
  };
  visit(node);
  return [...found];
}

function requireStateless(rule: RuleName, node: Skeleton, ctx: RewriteContext): void {
  const stateful = statefulFunctions(node, ctx);
  if (stateful.length > 0) throw refuse(rule, `${stateful.map((f) => `'${f}'`).join(', ')} keep${stateful.length === 1 ? 's' : ''} state`);
}

function replicasOf(...farms: Farm[]): number | 'auto' {
  const numbers = farms.map((f) => f.replicas).filter((r): r is number => r !== 'auto');
  return numbers.length === farms.length ? Math.max(...numbers) : 'auto';
}

/** Applies `rule` at the root of `node`; throws `E_REWRITE_REFUSED` when it does not apply. */
export function rewrite(node: Skeleton, rule: RuleName, ctx: RewriteContext = {}, options: { replicas?: number | 'auto' } = {}): Skeleton {
  if (!Object.hasOwn(RULES, rule)) {
    throw new SkeletonError(
      ErrorCode.INVALID_SKELETON,
      `no rewrite rule '${String(rule)}'; the rules are ${Object.keys(RULES).join(', ')}`,
      {
        rule,
      },
    );
  }
  switch (rule) {
    case 'pipeFlatten': {
      if (node.kind !== 'pipe' || !node.stages.some((s) => s.kind === 'pipe'))
        throw refuse(rule, 'not a pipe with a pipe among its stages');
      return pipe(...node.stages.flatMap((s) => (s.kind === 'pipe' ? s.stages : [s])));
    }
    case 'fusion': {
      if (node.kind !== 'pipe') throw refuse(rule, `not a pipe but a ${node.kind}`);
      const other = node.stages.find((s) => s.kind !== 'seq');
      if (other !== undefined)
        throw refuse(rule, `a stage is a ${other.kind}, not a seq (a farm takes items out of order; fuse inside it instead)`);
      const seqs = node.stages as readonly Extract<Skeleton, { kind: 'seq' }>[];
      const fns = seqs.flatMap((s) => s.fns) as [string, ...string[]];
      return seq(...fns, { stateful: seqs.some((s) => s.stateful) });
    }
    case 'farmIntro':
      requireStateless(rule, node, ctx);
      return farm(node, { replicas: options.replicas ?? 'auto' });
    case 'farmElim':
      if (node.kind !== 'farm') throw refuse(rule, `not a farm but a ${node.kind}`);
      requireStateless(rule, node.worker, ctx);
      return node.worker;
    case 'farmPipe': {
      if (node.kind !== 'pipe' || node.stages.length < 2 || node.stages.some((s) => s.kind !== 'farm')) {
        throw refuse(rule, 'not a pipe whose stages are all farms');
      }
      const farms = node.stages as readonly Farm[];
      for (const f of farms) requireStateless(rule, f.worker, ctx);
      return farm(pipe(...farms.map((f) => f.worker)), { replicas: replicasOf(...farms), ordered: farms.every((f) => f.ordered) });
    }
    case 'mapFusion': {
      if (node.kind !== 'pipe' || node.stages.length !== 2 || node.stages.some((s) => s.kind !== 'map'))
        throw refuse(rule, 'not a pipe of two maps');
      const [a, b] = node.stages as readonly MapNode[] as [MapNode, MapNode];
      if (a.gather.kind !== 'join' || b.partition.inverseOf !== a.gather.name) {
        throw refuse(
          rule,
          `the second map's partition '${b.partition.name}' does not exactly undo the first map's gather '${a.gather.name}'`,
        );
      }
      return map(pipe(a.worker, b.worker), { partition: a.partition, gather: b.gather });
    }
    case 'mapReduceFusion': {
      if (node.kind !== 'pipe' || node.stages.length !== 2 || node.stages[0]!.kind !== 'map' || node.stages[1]!.kind !== 'reduce') {
        throw refuse(rule, 'not a pipe of a map and a reduce');
      }
      const [m, r] = node.stages as [MapNode, Extract<Skeleton, { kind: 'reduce' }>];
      if (m.gather.kind !== 'join' || m.gather.name !== 'framed')
        throw refuse(rule, `the map gathers with '${m.gather.name}', not a framed list`);
      if (!r.associative) throw refuse(rule, `reduce '${r.fn}' is not declared associative`);
      return map(m.worker, { partition: m.partition, gather: gathers.reduce(r) });
    }
  }
}

/** Applies `rule` if it applies; `undefined` if it refuses. */
function attempt(node: Skeleton, rule: RuleName, ctx: RewriteContext, steps: string[] | undefined, options = {}): Skeleton | undefined {
  try {
    const out = rewrite(node, rule, ctx, options);
    steps?.push(rule);
    return out;
  } catch (err) {
    if (err instanceof SkeletonError && err.code === ErrorCode.REWRITE_REFUSED) return undefined;
    throw err;
  }
}

/**
 * The normal form: pipelines flattened, maps fused, map–reduce fused, and every run of
 * stateless seq/farm stages turned into one farm around their sequential composition (a
 * stateful stage stays a stage of its own). Rules whose conditions fail are not applied:
 * the result computes the same outputs. `steps`, when given, collects the rules applied.
 */
export function normalize(node: Skeleton, ctx: RewriteContext = {}, steps?: string[]): Skeleton {
  switch (node.kind) {
    case 'seq':
    case 'reduce':
    case 'mapReduce':
    case 'dc':
      return node;
    case 'iterate':
      return { ...node, body: normalize(node.body, ctx, steps) };
    case 'map': {
      // A farm inside a map adds nothing: the map already runs its parts in parallel.
      let worker = normalize(node.worker, ctx, steps);
      while (worker.kind === 'farm') {
        const inner = attempt(worker, 'farmElim', ctx, steps);
        if (inner === undefined) break; // a stateful worker keeps its farm
        worker = inner;
      }
      return { ...node, worker };
    }
    case 'farm': {
      const worker = normalize(node.worker, ctx, steps);
      // farm(farm(s)) is farm(s) with the outer farm's replicas and order: a farm inside a
      // farm runs one item at a time, so its own order never shows.
      if (worker.kind === 'farm') return farm(worker.worker, { replicas: node.replicas, ordered: node.ordered });
      return { ...node, worker };
    }
    case 'pipe':
      return normalizePipe(node, ctx, steps);
  }
}

function normalizePipe(node: Extract<Skeleton, { kind: 'pipe' }>, ctx: RewriteContext, steps: string[] | undefined): Skeleton {
  let stages = node.stages.map((s) => normalize(s, ctx, steps));
  if (stages.some((s) => s.kind === 'pipe')) stages = (rewrite(pipe(...stages), 'pipeFlatten') as typeof node).stages.slice();
  if (node.stages.some((s) => s.kind === 'pipe')) steps?.push('pipeFlatten');
  // Map fusion and map–reduce fusion on neighbours, left to right.
  for (let i = 0; i + 1 < stages.length;) {
    const pair = pipe(stages[i]!, stages[i + 1]!);
    const fused = attempt(pair, 'mapFusion', ctx, steps) ?? attempt(pair, 'mapReduceFusion', ctx, steps);
    if (fused !== undefined) stages.splice(i, 2, normalize(fused, ctx, steps));
    else i++;
  }
  // Runs of stateless seq/farm stages become one farm around their fused composition.
  const out: Skeleton[] = [];
  let run: Skeleton[] = [];
  const flush = (): void => {
    if (run.length === 0) return;
    const farms = run.filter((s): s is Farm => s.kind === 'farm');
    const bare = run.map((s) => (s.kind === 'farm' ? (attempt(s, 'farmElim', ctx, steps) ?? s) : s));
    const fused = bare.length > 1 ? (attempt(pipe(...bare), 'fusion', ctx, steps) ?? pipe(...bare)) : bare[0]!;
    const replicas = farms.length > 0 ? replicasOf(...farms) : 'auto';
    const ordered = farms.every((f) => f.ordered);
    const farmed = attempt(fused, 'farmIntro', ctx, steps, { replicas });
    out.push(farmed !== undefined && farmed.kind === 'farm' ? { ...farmed, ordered } : fused);
    run = [];
  };
  for (const s of stages) {
    const inner = s.kind === 'farm' ? s.worker : s;
    if (inner.kind === 'seq' && statefulFunctions(inner, ctx).length === 0) run.push(s);
    else {
      flush();
      out.push(s);
    }
  }
  flush();
  return out.length === 1 ? out[0]! : pipe(...out);
}

/** A readable, indented rendering of a skeleton tree. */
export function explain(node: Skeleton): string {
  const lines: string[] = [];
  const visit = (n: Skeleton, prefix: string, last: boolean, root: boolean): void => {
    const head = root ? '' : `${prefix}${last ? '└─ ' : '├─ '}`;
    const child = root ? '' : `${prefix}${last ? '   ' : '│  '}`;
    const children: Skeleton[] = [];
    let label: string;
    switch (n.kind) {
      case 'seq':
        label = `seq ${n.fns.join(' ; ')}${n.stateful ? ' (stateful)' : ''}`;
        break;
      case 'pipe':
        label = `pipe (${n.stages.length} stages)`;
        children.push(...n.stages);
        break;
      case 'farm':
        label = `farm ×${n.replicas} ${n.ordered ? 'ordered' : 'unordered'}`;
        children.push(n.worker);
        break;
      case 'map':
        label = `map partition ${n.partition.name}, gather ${n.gather.name}`;
        children.push(n.worker);
        break;
      case 'reduce':
        label = `reduce ${n.fn}${n.associative ? ' associative' : ''}${n.commutative ? ' commutative' : ''}`;
        break;
      case 'mapReduce':
        label = `mapReduce mapper ${n.mapper}, reducer ${n.reducer} ×${n.reducers}, partition ${n.partition.name}`;
        break;
      case 'dc':
        label = `dc divide ${n.divide}, combine ${n.combine}, base ${n.base}`;
        break;
      case 'iterate':
        label = `iterate at most ${n.maxIterations} times`;
        children.push(n.body);
        break;
    }
    lines.push(head + label);
    children.forEach((c, i) => visit(c, child, i === children.length - 1, false));
  };
  visit(node, '', true, true);
  return lines.join('\n');
}
