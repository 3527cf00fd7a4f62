/**
 * What an option is ({@link OptionSpec}: type, doc, range, default, check) and the building
 * blocks the options schema in options.ts is written with: integers in a range, one of a few
 * strings, flags, objects of options; and the walk that checks a value against a schema.
 */
import { ErrorCode, InvalidOptionError } from './errors.js';

/** What an option's check and default may look at: the options of its object resolved so far, and the enclosing object's. */
export interface OptionContext {
  readonly resolved: Record<string, unknown>;
  readonly parent: OptionContext | undefined;
}

/** One option: everything about it, in one place. */
export interface OptionSpec {
  /** Its TypeScript type, as the interfaces and the docs show it. */
  readonly type: string;
  /** What it does (markdown), with its unit. */
  readonly doc: string;
  /** Its default value. */
  readonly default?: unknown;
  /** Its default when it depends on the options around it (or must be new each time): computed then. */
  readonly defaultFrom?: (ctx: OptionContext) => unknown;
  /** How the docs show the default, where the value alone would not say it. */
  readonly defaultDoc?: string;
  /** The values it accepts, for the docs. */
  readonly range?: string;
  /** Must be given: its check sees `undefined` too. */
  readonly required?: boolean;
  /** An object of options: its fields, each documented and checked on its own. */
  readonly fields?: Schema;
  /** Checks a value that was given (never `undefined` unless `required`) and returns it resolved. */
  check(value: unknown, path: string, ctx: OptionContext): unknown;
}

/** The options of one object, in the order they are checked and documented. */
export type Schema = Readonly<Record<string, OptionSpec>>;

/** Longest allowed timeout, so that timers stay within Node's 32-bit range. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export function fail(path: string, expected: string, got: unknown): never {
  throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `option ${path} must be ${expected}, got ${describe(got)}`, { path });
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === null) return 'null';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}

export function checkObject(value: unknown, path: string, known: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(path, 'an object', value);
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!known.includes(key)) {
      throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `unknown option ${path}.${key}; known options are ${known.join(', ')}`, {
        path: `${path}.${key}`,
      });
    }
  }
  return record;
}

/** Checks `value` (an object or undefined) against `schema`: unknown keys refused, each option checked or defaulted, in order. */
export function resolveWith(schema: Schema, value: unknown, path: string, parent?: OptionContext): Record<string, unknown> {
  const given = checkObject(value, path, Object.keys(schema));
  const ctx: OptionContext = { resolved: {}, parent };
  for (const [key, spec] of Object.entries(schema)) {
    const v = given[key];
    ctx.resolved[key] = v !== undefined || spec.required === true ? spec.check(v, `${path}.${key}`, ctx) : defaultOf(spec, ctx);
  }
  return ctx.resolved;
}

function defaultOf(spec: OptionSpec, ctx: OptionContext): unknown {
  return spec.defaultFrom !== undefined ? spec.defaultFrom(ctx) : spec.default;
}

/**
 * The defaults of a schema as one object: an object option's are its fields' defaults; a
 * default that depends on other options is `undefined` here.
 */
export function defaultsOf(schema: Schema): Record<string, unknown> {
  const none: OptionContext = { resolved: {}, parent: undefined };
  return Object.fromEntries(
    Object.entries(schema).map(([key, spec]) => [key, spec.fields !== undefined ? defaultOf(spec, none) : spec.default]),
  );
}

/** A number as the docs show it: `2³¹−1`, `60 000`, and with `bytes`, `16 MiB`. */
export function formatNumber(n: number, bytes = false): string {
  if (n === Infinity) return '`Infinity`';
  if (n === MAX_TIMEOUT_MS) return '2³¹−1';
  if (n === 2 ** 53 - 1) return '2⁵³−1';
  for (const [unit, size] of [
    ['GiB', GiB],
    ['MiB', MiB],
    ['KiB', KiB],
  ] as const) {
    if (bytes && n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return n >= 10_000 ? String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ' ') : String(n);
}
type Bound = number | ((ctx: OptionContext) => number);
const bound = (b: Bound, ctx: OptionContext): number => (typeof b === 'function' ? b(ctx) : b);

/** An integer option from `min` to `max`. */
export function int(spec: {
  min: Bound;
  max: number;
  default: number | ((ctx: OptionContext) => number | undefined) | undefined;
  doc: string;
  defaultDoc?: string;
  range?: string;
  /** `maxQueue` only: `Infinity` is a value too. */
  infinite?: boolean;
  /** A size in bytes: the docs show `16 MiB`. */
  bytes?: boolean;
  /** Said after the range when the value is refused (`leave it out for no limit`). */
  hint?: string;
}): OptionSpec {
  return {
    type: 'number',
    doc: spec.doc,
    ...(typeof spec.default === 'function' ? { defaultFrom: spec.default } : { default: spec.default }),
    defaultDoc: spec.defaultDoc ?? (typeof spec.default === 'number' ? formatNumber(spec.default, spec.bytes) : undefined),
    range:
      spec.range ??
      `${formatNumber(spec.min as number, spec.bytes)} – ${formatNumber(spec.max, spec.bytes)}${spec.infinite ? ', or `Infinity`' : ''}`,
    check(value, path, ctx) {
      if (spec.infinite && value === Infinity) return value;
      const min = bound(spec.min, ctx);
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > spec.max) {
        fail(path, `an integer from ${min} to ${spec.max}${spec.hint === undefined ? '' : ` (${spec.hint})`}`, value);
      }
      return value;
    },
  };
}

/** An option that is one of a few strings. */
export function oneOf<T extends string>(values: readonly T[], fallback: T | undefined, doc: string): OptionSpec {
  return {
    type: values.map((v) => `'${v}'`).join(' | '),
    doc,
    default: fallback,
    check(value, path) {
      if (!values.includes(value as T)) fail(path, `one of ${values.map((a) => JSON.stringify(a)).join(', ')}`, value);
      return value;
    },
  };
}

export function flag(fallback: boolean, doc: string): OptionSpec {
  return {
    type: 'boolean',
    doc,
    default: fallback,
    check(value, path) {
      if (typeof value !== 'boolean') fail(path, 'a boolean', value);
      return value;
    },
  };
}

/**
 * An object of options: checked field by field; `finish` turns the resolved fields into what
 * the runtime keeps. Not given: `default` when set (`undefined` included), else every field's default.
 */
export function group(
  fields: Schema,
  spec: {
    doc: string;
    default?: unknown;
    defaultDoc?: string;
    finish?: (resolved: Record<string, unknown>, path: string, ctx: OptionContext) => unknown;
  },
): OptionSpec {
  const finish = spec.finish ?? ((resolved) => resolved);
  return {
    type: 'object',
    doc: spec.doc,
    ...('default' in spec
      ? { default: spec.default }
      : { defaultFrom: (ctx: OptionContext) => finish(resolveWith(fields, undefined, '', ctx), '', ctx) }),
    defaultDoc: spec.defaultDoc,
    fields,
    check: (value, path, ctx) => finish(resolveWith(fields, value, path, ctx), path, ctx),
  };
}
