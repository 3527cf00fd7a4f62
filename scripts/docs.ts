/**
 * Generates the reference tables of the docs book from the code, so that they cannot drift:
 * `docs/reference/errors.md` from `ERRORS` (runtime/errors.ts) and `docs/reference/options.md`
 * from the options schema (runtime/options.ts). `npm run docs` writes them; `npm test`
 * (test/docs.test.ts) fails when a committed file differs from what this produces.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import ts from 'typescript';
import { ERRORS, type ErrorCode } from '../runtime/errors.js';
import { formatNumber, OPTION_SCHEMAS, type OptionSpec, type Schema } from '../runtime/options.js';
import { SERVE_OPTION_SCHEMA } from '../serve/options.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** A generated file: its path from the repository root and its text. */
export interface Generated {
  path: string;
  text: string;
}

const NOTICE = (source: string): string =>
  `<!-- Generated from ${source} by \`npm run docs\`; do not edit here (npm test fails when it drifts). -->`;

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

/** The errors table: every code, its class, when it happens and what to do. */
export function errorsMarkdown(): string {
  const rows = (Object.keys(ERRORS) as ErrorCode[]).map((code) => {
    const spec = ERRORS[code];
    return `| \`${code}\` | \`${spec.class}\` | ${cell(spec.when)} | ${cell(spec.todo)} |`;
  });
  return [
    NOTICE('`ERRORS` in runtime/errors.ts'),
    '',
    '# Errors',
    '',
    'Every failure is a `NuvolaError` with a stable `code` and structured `details`; match on the',
    'code (or the class), not the message. Each code is always built as the class below',
    '(`makeError(code, …)` picks it). Errors that cross a thread or a host travel as',
    '`{ code, message, details }` and are rebuilt as the same class. A guest failure affects that',
    "call only: its instance is reset to the snapshot (or, with `reuse: 'keep'`, discarded) and",
    'everything else goes on. How a memory limit is recognised and a timeout enforced:',
    '[limits and timeouts](../guides/limits-and-timeouts.md).',
    '',
    '| code | class | when | what to do |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

/** `doc` as a sentence: a capital first letter, a full stop. */
function sentence(doc: string): string {
  const text = doc.charAt(0).toUpperCase() + doc.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** How the docs show an option's default. */
function defaultText(spec: OptionSpec): string {
  if (spec.defaultDoc !== undefined) return spec.defaultDoc;
  if (spec.fields !== undefined) return 'each field’s default';
  const value = spec.default;
  if (value === undefined) return 'none';
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'string') return `\`'${value}'\``;
  return `\`${JSON.stringify(value)}\``;
}

/** The TypeScript type of an option: an object option's fields inline, each with its doc. */
function typeText(spec: OptionSpec, indent: string): string {
  if (spec.fields === undefined) return spec.type;
  return `{\n${members(spec.fields, indent + '  ')}${indent}}`;
}

function members(schema: Schema, indent: string): string {
  return Object.entries(schema)
    .map(([key, spec]) => {
      const facts = [
        spec.range === undefined ? '' : `Range: ${spec.range}.`,
        spec.required ? 'Required.' : `Default: ${defaultText(spec)}.`,
      ]
        .filter((f) => f !== '')
        .join(' ');
      const lines = [...wrap(sentence(spec.doc)), ...wrap(facts)];
      const comment = [`${indent}/**`, ...lines.map((l) => `${indent} * ${l}`), `${indent} */`].join('\n');
      return `${comment}\n${indent}${key}${spec.required ? '' : '?'}: ${typeText(spec, indent)};\n`;
    })
    .join('');
}

function wrap(text: string, width = 100): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** runtime/options-types.ts: the option interfaces users see, with their docs, from the schema. */
export function optionTypes(): string {
  const interfaces = OPTION_SCHEMAS.map(
    ({ name, of, schema }) => `/** Options of ${of}. */\nexport interface ${name} {\n${members(schema, '  ')}}\n`,
  );
  return [
    '// Generated from the options schema in runtime/options.ts by `npm run docs`; do not edit here',
    '// (npm test fails when it drifts). Change the schema, then run `npm run docs`.',
    "import type { RedisTarget } from '../state/redis-tier.js';",
    "import type { LogEntry } from './log-entry.js';",
    '',
    ...interfaces,
  ].join('\n');
}

function optionRows(schema: Schema, prefix: string): string[] {
  return Object.entries(schema).flatMap(([key, spec]) => {
    const name = prefix + key;
    const type = spec.fields === undefined ? `\`${spec.type.replaceAll('|', '\\|')}\`` : 'object';
    const row = `| \`${name}\` | ${type} | ${cell(spec.range ?? '')} | ${cell(spec.required ? '**required**' : defaultText(spec))} | ${cell(sentence(spec.doc))} |`;
    return [row, ...(spec.fields === undefined ? [] : optionRows(spec.fields, `${name}.`))];
  });
}

/** The options tables: every option of every entry point, its type, range, default and meaning. */
export function optionsMarkdown(): string {
  const sections = [...OPTION_SCHEMAS, SERVE_OPTION_SCHEMA].flatMap(({ name, of, schema }) => [
    `## ${of}: \`${name}\``,
    '',
    '| option | type | range | default | what |',
    '| --- | --- | --- | --- | --- |',
    ...optionRows(schema, ''),
    '',
  ]);
  return [
    NOTICE('the options schema in runtime/options.ts'),
    '',
    '# Options',
    '',
    'Every option of every entry point. All are checked before anything starts: a wrong, mistyped',
    'or unknown option throws `InvalidOptionError` (`E_INVALID_OPTION`) with `details.path` naming it',
    '(`options.cluster.heartbeatMs`). Times are in milliseconds, sizes in bytes, unless the name says',
    'otherwise. The same facts are in the TypeScript types (`RuntimeOptions`, …) that your editor shows.',
    '',
    ...sections,
  ].join('\n');
}

/** The package's entry points, as a user imports them. */
const ENTRIES = [
  { name: 'nuvola', file: 'runtime/index.ts' },
  { name: 'nuvola/testing', file: 'runtime/testing.ts' },
  { name: 'nuvola/skeletons', file: 'skeletons/index.ts' },
  { name: 'nuvola/serve', file: 'serve/index.ts' },
];

/** The API reference: every export of every entry point, its signature and its doc comment, read from the source. */
export function apiMarkdown(): string {
  const program = ts.createProgram(
    ENTRIES.map((e) => root + e.file),
    { target: ts.ScriptTarget.ES2023, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true },
  );
  const checker = program.getTypeChecker();
  const flags = ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.UseAliasDefinedOutsideCurrentScope;
  const docOf = (symbol: ts.Symbol): string => ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
  const oneLine = (text: string): string => text.replace(/\s+/g, ' ');
  const typeOf = (symbol: ts.Symbol, at: ts.Node): string =>
    oneLine(checker.typeToString(checker.getTypeOfSymbolAtLocation(symbol, at), at, flags));
  const out: string[] = [
    '<!-- Generated from the source by `npm run docs` (scripts/docs.ts); do not edit here (npm test fails when it drifts). -->',
    '',
    '# API',
    '',
    'Every name the package exports, with its signature and its doc comment. Options: [options.md](options.md);',
    'error codes: [errors.md](errors.md). The guides explain how the parts fit: [../README.md](../README.md).',
    '',
  ];
  for (const entry of ENTRIES) {
    const source = program.getSourceFile(root + entry.file)!;
    const module = checker.getSymbolAtLocation(source)!;
    out.push(`## \`${entry.name}\``, '');
    const exports = checker.getExportsOfModule(module).sort((a, b) => a.name.localeCompare(b.name));
    for (const exported of exports) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const decl = symbol.declarations?.[0];
      if (decl === undefined) continue;
      const kind = ts.isClassDeclaration(decl)
        ? 'class'
        : ts.isInterfaceDeclaration(decl)
          ? 'interface'
          : ts.isTypeAliasDeclaration(decl)
            ? 'type'
            : ts.isFunctionDeclaration(decl)
              ? 'function'
              : 'const';
      out.push(`### \`${exported.name}\` (${kind})`, '');
      if (kind === 'function') {
        for (const signature of checker.getSignaturesOfType(checker.getTypeOfSymbolAtLocation(symbol, decl), ts.SignatureKind.Call)) {
          out.push('```ts', `${exported.name}${oneLine(checker.signatureToString(signature, decl, flags))}`, '```', '');
        }
      } else if (kind === 'type') {
        out.push(
          '```ts',
          `type ${exported.name} = ${oneLine(checker.typeToString(checker.getDeclaredTypeOfSymbol(symbol), decl, flags | ts.TypeFormatFlags.InTypeAlias))}`,
          '```',
          '',
        );
      } else if (kind === 'const' && !(ts.isVariableDeclaration(decl) && /_DEFAULTS$|^ErrorCode$/.test(exported.name))) {
        out.push('```ts', `const ${exported.name}: ${typeOf(symbol, decl)}`, '```', '');
      }
      const doc = docOf(symbol);
      if (doc !== '') out.push(doc, '');
      if (kind === 'class' || kind === 'interface') {
        const type = kind === 'class' ? checker.getTypeOfSymbolAtLocation(symbol, decl) : checker.getDeclaredTypeOfSymbol(symbol);
        const members = kind === 'class' ? checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(symbol)) : type.getProperties();
        const rows = members
          .filter((m) => !m.name.startsWith('_') && !m.name.startsWith('#'))
          .filter((m) => {
            const d = m.valueDeclaration ?? m.declarations?.[0];
            if (d === undefined) return false;
            const mods = ts.getCombinedModifierFlags(d as ts.Declaration);
            // Declared in the project's own files: not in a library (node_modules may be a link
            // into another checkout, whose path would start with `root` there and not here).
            const file = d.getSourceFile();
            return (
              !(mods & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) &&
              file.fileName.startsWith(root) &&
              !file.fileName.includes('/node_modules/') &&
              !program.isSourceFileDefaultLibrary(file)
            );
          })
          .map((m) => {
            const d = (m.valueDeclaration ?? m.declarations![0])!;
            const text =
              ts.isMethodDeclaration(d) || ts.isMethodSignature(d)
                ? checker
                    .getSignaturesOfType(checker.getTypeOfSymbolAtLocation(m, d), ts.SignatureKind.Call)
                    .map((sig) => `${m.name}${oneLine(checker.signatureToString(sig, d, flags))}`)
                    .join('; ')
                : `${m.name}: ${typeOf(m, d)}`;
            const optional = m.flags & ts.SymbolFlags.Optional ? ' (optional)' : '';
            return `| \`${cell(text)}\`${optional} | ${cell(oneLine(docOf(m)))} |`;
          });
        if (rows.length > 0) out.push('| member | what |', '| --- | --- |', ...rows, '');
      }
    }
  }
  return out.join('\n');
}

/** Every generated file, formatted as `npm run format` would leave it. */
export async function generated(): Promise<Generated[]> {
  const files = [
    { path: 'docs/reference/errors.md', text: errorsMarkdown() },
    { path: 'docs/reference/options.md', text: optionsMarkdown() },
    { path: 'runtime/options-types.ts', text: optionTypes() },
    { path: 'docs/reference/api.md', text: apiMarkdown() },
  ];
  const config = (await resolveConfig(root + 'README.md')) ?? {};
  return Promise.all(files.map(async (f) => ({ path: f.path, text: await format(f.text, { ...config, filepath: root + f.path }) })));
}

/** The generated files that differ from what is on disk; writes them unless `check`. */
async function update(check: boolean): Promise<string[]> {
  const stale: string[] = [];
  for (const file of await generated()) {
    let current: string | undefined;
    try {
      current = readFileSync(root + file.path, 'utf8');
    } catch {
      current = undefined;
    }
    if (current === file.text) continue;
    stale.push(file.path);
    if (!check) writeFileSync(root + file.path, file.text);
  }
  return stale;
}

/**
 * Writes every generated file; `--check` only says which differ (exit code 1 when any does).
 * The API reference reads the generated option interfaces from disk, so a write is followed by
 * a second pass.
 */
async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const stale = await update(check);
  if (!check && stale.length > 0) for (const path of await update(false)) if (!stale.includes(path)) stale.push(path);
  if (check && stale.length > 0) {
    process.stderr.write(`out of date (run npm run docs): ${stale.join(', ')}\n`);
    process.exitCode = 1;
  } else process.stdout.write(stale.length === 0 ? 'docs: up to date\n' : `docs: wrote ${stale.join(', ')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
