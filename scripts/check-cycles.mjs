// Part of `npm test` (and `npm run lint`): fails on an import cycle among nuvola's own source
// files. Two graphs, both from the TypeScript compiler API:
// - value imports: what the compiled JavaScript imports (each file transpiled on its own, so an
//   import whose names are only used as types is gone, as in dist/). A cycle here decides the
//   order modules evaluate in; it fails the check.
// - all imports, `import type` included: a cycle only here is reported as a type-only cycle. It
//   costs nothing at run time but ties the files into one unit to read; it fails the check too.
// Dynamic `import()` is lazy and is not an edge. Each cycle is shown as its strongly connected
// component (every file on some cycle with the others).
//
// `ALLOWED` names the cycles known today and who removes them. A cycle passes only if all its
// files are inside one entry: a new cycle, or a new file joining a known one, fails. An entry
// that no longer matches anything is reported, to be deleted.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const folders = ['runtime', 'state', 'cluster', 'kernels', 'skeletons', 'bench', 'examples', 'test', 'guest/sdk/nuvola/abi.ts'];

/** Known cycles, each removed by the engineer named (issue 17); the lead empties this list after merging. */
const ALLOWED = [
  {
    kind: 'type',
    owner:
      'cluster (issue 17, item 3: options.ts takes its cluster types from a file of their own; entries.ts no longer reaches back into cluster.ts)',
    files: ['cluster/cluster.ts', 'cluster/entries.ts', 'cluster/outcome.ts', 'runtime/options.ts', 'runtime/pool.ts'],
  },
  {
    kind: 'type',
    owner: 'spine (issue 17, items 1–2: each capability owns its per-call state, so GuestContext no longer names them all)',
    files: [
      'runtime/host/chain.ts',
      'runtime/host/comm.ts',
      'runtime/host/context.ts',
      'runtime/host/env.ts',
      'runtime/host/imports.ts',
      'runtime/host/io.ts',
      'runtime/host/kernels.ts',
      'runtime/host/state.ts',
      'runtime/host/wasi.ts',
      'runtime/host/wasi/fd-ops.ts',
      'runtime/host/wasi/memory.ts',
      'runtime/host/wasi/path-ops.ts',
      'runtime/host/wasi/state.ts',
      'runtime/protocol.ts',
      'runtime/worker/component.ts',
      'runtime/worker/instance.ts',
    ],
  },
];

function sources(root, path) {
  const full = join(root, path);
  if (statSync(full).isFile()) return [path];
  return readdirSync(full, { withFileTypes: true }).flatMap((e) => {
    const rel = join(path, e.name);
    if (e.isDirectory()) return e.name === 'guests' || e.name === 'fixtures' || e.name.startsWith('.') ? [] : sources(root, rel);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** The relative module specifiers a file imports or re-exports statically. */
function specifiers(sourceFile) {
  const out = [];
  for (const node of sourceFile.statements) {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      out.push(node.moduleSpecifier.text);
    }
  }
  return out.filter((s) => s.startsWith('.'));
}

function target(root, from, specifier, files) {
  const path = relative(root, resolve(root, dirname(from), specifier)).replace(/\.js$/, '.ts');
  return files.has(path) ? path : undefined;
}

/** Builds both graphs of the files under `paths` (relative to `root`): file → files it imports (values only; everything). */
export function graphs(root = repo, paths = folders) {
  const files = new Set(paths.flatMap((p) => sources(root, p)));
  const value = new Map();
  const all = new Map();
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2023, false, ts.ScriptKind.TS);
    const js = ts.transpileModule(text, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023, verbatimModuleSyntax: false },
    }).outputText;
    const emitted = ts.createSourceFile(file + '.js', js, ts.ScriptTarget.ES2023, false, ts.ScriptKind.JS);
    const edges = (sf) => new Set(specifiers(sf).flatMap((s) => target(root, file, s, files) ?? []));
    all.set(file, edges(source));
    value.set(file, edges(emitted));
  }
  return { value, all };
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
export function cycles(graph) {
  let index = 0;
  const stack = [];
  const info = new Map();
  const found = [];
  const visit = (v) => {
    const node = { index, low: index, onStack: true };
    index++;
    info.set(v, node);
    stack.push(v);
    for (const w of graph.get(v) ?? []) {
      const seen = info.get(w);
      if (seen === undefined) {
        visit(w);
        node.low = Math.min(node.low, info.get(w).low);
      } else if (seen.onStack) node.low = Math.min(node.low, seen.index);
    }
    if (node.low === node.index) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        info.get(w).onStack = false;
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!info.has(v)) visit(v);
  return found;
}

/** Splits the cycles into allowed and new ones; reports allow-list entries that match nothing. */
export function judge(valueCycles, typeCycles, allowed = ALLOWED) {
  const used = new Set();
  const match = (kind) => (component) => {
    const entry = allowed.find((a) => a.kind === kind && component.every((f) => a.files.includes(f)));
    if (entry !== undefined) used.add(entry);
    return entry;
  };
  const isValue = (component) => valueCycles.some((c) => component.every((f) => c.includes(f)));
  const typeOnly = typeCycles.filter((c) => !isValue(c));
  const fresh = [
    ...valueCycles.filter((c) => match('value')(c) === undefined).map((files) => ({ kind: 'value', files })),
    // A type-only cycle may contain a known value cycle; a value-cycle entry covers it too.
    ...typeOnly.filter((c) => match('type')(c) === undefined && match('value')(c) === undefined).map((files) => ({ kind: 'type', files })),
  ];
  return { fresh, stale: allowed.filter((a) => !used.has(a)), typeOnly };
}

function main() {
  const { value, all } = graphs();
  const valueCycles = cycles(value);
  const allCycles = cycles(all);
  const { fresh, stale, typeOnly } = judge(valueCycles, allCycles);
  for (const c of valueCycles) console.log(`check-cycles: value cycle (${c.length} files): ${c.join(' ')}`);
  for (const c of typeOnly) console.log(`check-cycles: type-only cycle (${c.length} files): ${c.join(' ')}`);
  for (const a of stale) console.log(`check-cycles: the allowed ${a.kind} cycle of ${a.owner} is gone; delete its entry`);
  if (fresh.length === 0) {
    console.log(`check-cycles: ${value.size} files, no new import cycle (${ALLOWED.length - stale.length} known, allowed)`);
    return 0;
  }
  for (const { kind, files } of fresh) {
    console.error(`check-cycles: NEW ${kind === 'value' ? 'value' : 'type-only'} import cycle: ${files.join(' ')}`);
  }
  console.error('check-cycles: break it (move the shared part to a file both import, or pass it in); see scripts/check-cycles.mjs');
  return 1;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main();
}
