/**
 * Both threads. The one list of host capabilities. Adding a capability is one folder
 * (`manifest.ts`, `guest.ts`, and a main-thread half if it has one), its SDK file, and one
 * line here. The main thread reads the manifests; workers load each `guest` half
 * (guest.ts), in this order: a capability's slot in the context is its index here.
 */
import chain from './chain/manifest.js';
import comm from './comm/manifest.js';
import env from './env/manifest.js';
import io from './io/manifest.js';
import kernels from './kernels/manifest.js';
import type { CapabilityManifest } from './manifest.js';
import region from './region/manifest.js';
import state from './state/manifest.js';
import sys from './sys/manifest.js';
import wasi from './wasi/manifest.js';

export const CAPABILITIES: readonly CapabilityManifest[] = [io, state, chain, comm, kernels, env, wasi, sys, region];

/** module → import name → the only kind the ABI provides for it. */
export const PROVIDED_IMPORTS: Readonly<Record<string, Readonly<Record<string, string>>>> = Object.fromEntries(
  CAPABILITIES.map((c) => [c.module, Object.fromEntries(Object.keys(c.imports).map((n) => [n, 'function']))]),
);

/** `module.name` → the Wasm signature the host provides, as `formatSignature` writes it. */
export const IMPORT_SIGNATURES: ReadonlyMap<string, string> = new Map(
  CAPABILITIES.flatMap((c) => Object.entries(c.imports).map(([n, spec]): [string, string] => [`${c.module}.${n}`, spec.signature])),
);

/** `module.name` of every import that may suspend the guest. */
export const SUSPENDING_IMPORTS: ReadonlySet<string> = new Set(
  CAPABILITIES.flatMap((c) =>
    Object.entries(c.imports)
      .filter(([, spec]) => spec.suspends)
      .map(([n]) => `${c.module}.${n}`),
  ),
);

export { WASI_MODULE, WASI_START } from './wasi/manifest.js';
