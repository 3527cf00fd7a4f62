/**
 * Generates the reference tables of the docs book from the code, so that they cannot drift:
 * `docs/reference/errors.md` from `ERRORS` (runtime/errors.ts) and `docs/reference/options.md`
 * from the options schema (runtime/options.ts). `npm run docs` writes them; `npm test`
 * (test/docs.test.ts) fails when a committed file differs from what this produces.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { ERRORS, type ErrorCode } from '../runtime/errors.js';

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
    '`{ code, message, details }` and are rebuilt as the same class.',
    '',
    '| code | class | when | what to do |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

/** Every generated file, formatted as `npm run format` would leave it. */
export async function generated(): Promise<Generated[]> {
  const files = [{ path: 'docs/reference/errors.md', text: errorsMarkdown() }];
  const config = (await resolveConfig(root + 'README.md')) ?? {};
  return Promise.all(files.map(async (f) => ({ path: f.path, text: await format(f.text, { ...config, filepath: root + f.path }) })));
}

/** Writes every generated file; `--check` only says which differ (exit code 1 when any does). */
async function main(): Promise<void> {
  const check = process.argv.includes('--check');
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
  if (check && stale.length > 0) {
    process.stderr.write(`out of date (run npm run docs): ${stale.join(', ')}\n`);
    process.exitCode = 1;
  } else process.stdout.write(stale.length === 0 ? 'docs: up to date\n' : `docs: wrote ${stale.join(', ')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
