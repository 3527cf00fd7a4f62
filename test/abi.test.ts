// The ABI file is the single source of names; the SDK must repeat its import names exactly
// (AssemblyScript's @external needs literals), and the host must provide every one of them.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as abi from '../guest/sdk/nuvola/abi.js';
import { IMPORT_SIGNATURES, PROVIDED_IMPORTS } from '../runtime/capabilities/registry.js';
import { WASI_MODULE } from '../runtime/capabilities/wasi/manifest.js';

const sdkIo = readFileSync(new URL('../guest/sdk/nuvola/io.ts', import.meta.url), 'utf8');
const sdkChain = readFileSync(new URL('../guest/sdk/nuvola/chain.ts', import.meta.url), 'utf8');

function externals(source: string): string[] {
  return [...source.matchAll(/@external\("([^"]+)", "([^"]+)"\)/g)].map((m) => `${m[1]}.${m[2]}`);
}

describe('ABI', () => {
  it('the SDK imports exactly the io names the ABI declares', () => {
    const declared = [abi.IO_INPUT_SIZE, abi.IO_INPUT_READ, abi.IO_OUTPUT_WRITE, abi.IO_LOG, abi.IO_SLEEP, abi.IO_REMAINING_MS].map(
      (n) => `${abi.MODULE_IO}.${n}`,
    );
    expect(externals(sdkIo).sort()).toEqual(declared.sort());
  });

  it('the SDK imports exactly the chain names the ABI declares, and its FAILED is the ABI value', () => {
    const declared = [abi.CHAIN_CALL, abi.CHAIN_WAIT, abi.CHAIN_OUTPUT_SIZE, abi.CHAIN_OUTPUT_READ].map((n) => `${abi.MODULE_CHAIN}.${n}`);
    expect(externals(sdkChain).sort()).toEqual(declared.sort());
    expect(sdkChain).toContain(`FAILED: i32 = ${abi.CHAIN_FAILED};`);
  });

  it('the SDK imports exactly the region names the ABI declares, and the host provides them', async () => {
    const sdkRegion = readFileSync(new URL('../guest/sdk/nuvola/region.ts', import.meta.url), 'utf8');
    const names = Object.entries(abi)
      .filter(([k]) => k.startsWith('REGION_') && k !== 'REGION_SLOTS')
      .map(([, v]) => `${abi.MODULE_REGION}.${String(v)}`);
    expect(externals(sdkRegion).sort()).toEqual(names.sort());
    expect(
      Object.keys(PROVIDED_IMPORTS[abi.MODULE_REGION]!)
        .map((n) => `${abi.MODULE_REGION}.${n}`)
        .sort(),
    ).toEqual(names.sort());
  });

  it('the host provides every import the SDK uses', () => {
    for (const name of [...externals(sdkIo), ...externals(sdkChain)]) {
      const [module, fn] = name.split('.') as [string, string];
      expect(PROVIDED_IMPORTS[module]?.[fn], name).toBe('function');
    }
  });

  it('every SDK file declares its imports with the signature the host provides', () => {
    const sdk = new URL('../guest/sdk/nuvola/', import.meta.url);
    const wasm: Record<string, string> = {
      i32: 'i32',
      u32: 'i32',
      usize: 'i32',
      bool: 'i32',
      i64: 'i64',
      u64: 'i64',
      f32: 'f32',
      f64: 'f64',
    };
    let checked = 0;
    for (const file of readdirSync(sdk).filter((f) => f.endsWith('.ts'))) {
      const source = readFileSync(new URL(file, sdk), 'utf8');
      for (const m of source.matchAll(/@external\("([^"]+)", "([^"]+)"\)\s*declare function \w+\(([^)]*)\): (\w+);/g)) {
        const params = m[3]!
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p !== '')
          .map((p) => wasm[p.split(':')[1]!.trim()]);
        const result = m[4] === 'void' ? '' : wasm[m[4]!];
        expect(`(${params.join(', ')}) -> (${result})`, `${file}: ${m[1]}.${m[2]}`).toBe(IMPORT_SIGNATURES.get(`${m[1]}.${m[2]}`));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(50);
  });

  it('AssemblyScript runtime imports live in env, and nuvola capabilities never do', () => {
    expect(Object.keys(PROVIDED_IMPORTS[abi.MODULE_ENV] ?? {}).sort()).toEqual([abi.ENV_ABORT, abi.ENV_SEED, abi.ENV_TRACE].sort());
    for (const module of Object.keys(PROVIDED_IMPORTS)) {
      if (module !== abi.MODULE_ENV && module !== WASI_MODULE) expect(module.startsWith('nuvola:')).toBe(true);
    }
    // WASI preview 1, all of it (what is not supported answers ENOTSUP rather than failing to link).
    expect(Object.keys(PROVIDED_IMPORTS[WASI_MODULE] ?? {})).toHaveLength(46);
  });
});
