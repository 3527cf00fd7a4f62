// Types for system-deps.mjs (plain JavaScript: it runs before the build), for its test.
export interface Requirement {
  pkg: string;
  command?: string;
}
export interface System {
  hasDpkg: boolean;
  hasApt: boolean;
  isRoot: boolean;
  clangMajor: number;
  hasCommand(name: string): boolean;
  installed(pkg: string): boolean;
}
export type Plan =
  | { action: 'none' }
  | { action: 'install'; missing: string[]; command: string }
  | { action: 'fail'; missing: string[]; command: string | undefined; message: string };
export function requirements(clangMajor: number): Requirement[];
export function plan(sys: System): Plan;
export function probeSystem(): System;
