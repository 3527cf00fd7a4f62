// Part of `npm test` (and `npm run lint`): fails on an import cycle among nuvola's own source
// files. Two graphs, both from the TypeScript compiler API:
// - value imports: what the compiled JavaScript imports (an import whose names are only used as
//   types is elided, as TypeScript does in dist/). A cycle here decides the order modules
//   evaluate in; it fails the check.
// - all imports, `import type` included: a cycle only here is reported as a type-only cycle. It
//   costs nothing at run time but ties the files into one unit to read; it fails the check too.
// Dynamic `import()` is lazy and is not an edge. Each cycle is shown as its strongly connected
// component (every file on some cycle with the others).
//
// `ALLOWED` names the cycles known today and who removes them. A cycle passes only if all its
// files are inside one entry: a new cycle, or a new file joining a known one, fails. An entry
// that no longer matches anything is reported, to be deleted.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Loaded with require: importing the 9 MB CommonJS file as ESM first scans it for export names.
const ts = createRequire(import.meta.url)('typescript');

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const folders = ['runtime', 'state', 'cluster', 'kernels', 'skeletons', 'serve', 'bench', 'examples', 'test', 'guest/sdk/nuvola/abi.ts'];

/** Known cycles, each removed by the engineer named (issue 17); the lead empties this list after merging. */
const ALLOWED = [];

function sources(root, path) {
  const full = join(root, path);
  if (statSync(full).isFile()) return [path];
  return readdirSync(full, { withFileTypes: true }).flatMap((e) => {
    const rel = join(path, e.name);
    if (e.isDirectory()) return e.name === 'guests' || e.name === 'fixtures' || e.name.startsWith('.') ? [] : sources(root, rel);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** Whether a name is used outside type positions anywhere in the file (shadowing ignored: it errs towards a value). */
function usedAsValue(sourceFile, names) {
  let found = false;
  const visit = (node) => {
    if (found || ts.isImportDeclaration(node) || ts.isTypeNode(node) || ts.isInterfaceDeclaration(node) || ts.isTypeAliasDeclaration(node))
      return;
    if (ts.isHeritageClause(node) && node.token === ts.SyntaxKind.ImplementsKeyword) return;
    if (ts.isIdentifier(node) && names.has(node.text)) found = true;
    else ts.forEachChild(node, visit);
  };
  ts.forEachChild(sourceFile, visit);
  return found;
}

/**
 * The relative modules a file imports or re-exports statically, each with whether the compiled
 * JavaScript keeps the import: as TypeScript does, an import none of whose names is used as a
 * value is elided (and so are `import type` and `export type … from`).
 */
function imports(sourceFile) {
  const out = [];
  for (const node of sourceFile.statements) {
    const spec = node.moduleSpecifier;
    if (spec === undefined || !ts.isStringLiteral(spec) || !spec.text.startsWith('.')) continue;
    if (ts.isExportDeclaration(node)) {
      const named = node.exportClause !== undefined && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      out.push({ specifier: spec.text, value: !node.isTypeOnly && (named === undefined || named.some((e) => !e.isTypeOnly)) });
    } else if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      if (clause === undefined) {
        out.push({ specifier: spec.text, value: true }); // import './x.js': for its side effects
        continue;
      }
      const names = new Set();
      if (!clause.isTypeOnly) {
        if (clause.name) names.add(clause.name.text);
        const bindings = clause.namedBindings;
        if (bindings && ts.isNamespaceImport(bindings)) names.add(bindings.name.text);
        if (bindings && ts.isNamedImports(bindings)) for (const e of bindings.elements) if (!e.isTypeOnly) names.add(e.name.text);
      }
      out.push({ specifier: spec.text, value: names.size > 0 && usedAsValue(sourceFile, names) });
    }
  }
  return out;
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
    const source = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.ES2023, true, ts.ScriptKind.TS);
    const edges = imports(source).flatMap((i) => {
      const to = target(root, file, i.specifier, files);
      return to === undefined ? [] : [{ to, value: i.value }];
    });
    all.set(file, new Set(edges.map((e) => e.to)));
    value.set(file, new Set(edges.filter((e) => e.value).map((e) => e.to)));
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
