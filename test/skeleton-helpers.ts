// Shared by the skeleton suites.
import { join } from 'node:path';
import type { Runtime } from 'nuvola';
import { registerGuests } from '../dist/examples/06-skeletons/apps.js';

/** Where the application guests are built for the tests (once, at -O3). */
export const appCache = join(new URL('./.build/', import.meta.url).pathname, 'skeletons');

/** Registers the application guests of examples/06-skeletons on `rt` and returns it. */
export async function withAppGuests(rt: Runtime): Promise<Runtime> {
  await registerGuests(rt, appCache);
  return rt;
}

export const u32s = (...xs: number[]): Uint8Array => new Uint8Array(new Uint32Array(xs).buffer);
export const readU32s = (b: Uint8Array): number[] => Array.from(new Uint32Array(Uint8Array.from(b).buffer));
