/**
 * Main thread. Which host resources a function fetched from the cluster's registry may have on
 * this host: its registration asks (`wasi.dirs`, `wasi.env`), this host's `cluster.grants`
 * decides. A registry entry comes from another host, so it never grants by itself what this
 * host's own configuration does not.
 */
import { realpathSync } from 'node:fs';
import { sep } from 'node:path';

/** What a host gives functions from the registry (`cluster.grants`, resolved). */
export interface Grants {
  /** Directories (real paths) a function's `wasi.dirs` may lie under; writable ones may be asked writable. */
  dirs: { host: string; writable: boolean }[];
  /** Environment variable names a function's `wasi.env` may set. */
  env: string[];
}

/**
 * What of `options` (a registration as the registry has it) `grants` does not give, in words,
 * or undefined when it asks for nothing more. A directory counts by its real path on this host,
 * so a symbolic link does not lead out of a granted one.
 */
export function refusedGrants(options: Record<string, unknown>, grants: Grants): string | undefined {
  const wasi = options['wasi'];
  if (wasi === undefined) return undefined;
  if (wasi === null || typeof wasi !== 'object') return 'wasi options of an unknown form';
  const { dirs, env } = wasi as { dirs?: unknown; env?: unknown };
  const refused: string[] = [];
  if (dirs !== undefined) {
    if (!Array.isArray(dirs)) return 'wasi.dirs of an unknown form';
    for (const dir of dirs as unknown[]) {
      const { host, writable } = (dir ?? {}) as { host?: unknown; writable?: unknown };
      if (typeof host !== 'string') return 'wasi.dirs of an unknown form';
      let real: string;
      try {
        real = realpathSync(host);
      } catch {
        refused.push(`directory ${host} (not on this host)`);
        continue;
      }
      const within = grants.dirs.filter((g) => real === g.host || real.startsWith(g.host.endsWith(sep) ? g.host : g.host + sep));
      if (within.length === 0) refused.push(`directory ${host}`);
      else if (writable === true && !within.some((g) => g.writable)) refused.push(`directory ${host} writable`);
    }
  }
  if (env !== undefined) {
    if (env === null || typeof env !== 'object') return 'wasi.env of an unknown form';
    for (const name of Object.keys(env)) if (!grants.env.includes(name)) refused.push(`environment variable ${name}`);
  }
  return refused.length === 0 ? undefined : refused.join(', ');
}
