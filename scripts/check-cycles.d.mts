// Types for check-cycles.mjs (plain JavaScript, run by `npm run lint`), for its test.
export interface AllowedCycle {
  kind: 'value' | 'type';
  owner: string;
  files: string[];
}
export function graphs(root?: string, paths?: string[]): { value: Map<string, Set<string>>; all: Map<string, Set<string>> };
export function cycles(graph: Map<string, Set<string>>): string[][];
export function judge(
  valueCycles: string[][],
  typeCycles: string[][],
  allowed?: AllowedCycle[],
): { fresh: { kind: 'value' | 'type'; files: string[] }[]; stale: AllowedCycle[]; typeOnly: string[][] };
