/**
 * Main thread. Builds small WebAssembly components with jco's bundled wasm-tools (parse WAT,
 * embed the WIT, `component new`) for `bench invoke` and the component tests. Real toolchains
 * (cargo-component, wit-bindgen) produce the same shape: a core module with the canonical
 * ABI's exports, wrapped with its world.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { componentEmbed, componentNew, parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { FUNCTION_WORLD } from '../runtime/component.js';

/** A component from a core module in WAT and its world (default: nuvola's function world). */
export async function buildComponent(wat: string, wit: string = FUNCTION_WORLD, world = 'function'): Promise<Uint8Array> {
  const core = await parse(wat);
  const embedded = await componentEmbed({ binary: core, witSource: wit, world });
  return componentNew(embedded);
}

/** The echo component's core module (guest/examples/component/echo.wat; what it does is said there). */
export const ECHO_COMPONENT_WAT = readFileSync(projectFile('guest/examples/component/echo.wat'), 'utf8');

/** A file of the project, from this module's source (bench/) or its build (dist/bench/). */
function projectFile(path: string): string {
  const candidates = ['../', '../../'].map((up) => fileURLToPath(new URL(up + path, import.meta.url)));
  return candidates.find((file) => existsSync(file)) ?? candidates[0]!;
}
