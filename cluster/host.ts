/**
 * Main thread of its own process. One cluster host: a runtime in cluster mode that runs the
 * cluster's functions until it gets SIGTERM or SIGINT. `nuvola cluster up`, the fault tests and
 * `nuvola bench cluster` start it as a child process:
 *
 *   NUVOLA_CLUSTER_SECRET=… node dist/cluster/host.js '<json: { redis, cluster: { name, ... }, workers? }>'
 *
 * The cluster's secret comes from the environment variable NUVOLA_CLUSTER_SECRET (a string,
 * or a JSON list of strings to rotate), not the command line, which every user can read.
 *
 * It prints `ready <host id>` on stdout once it has joined, and a line per log entry on stderr.
 */
import { createRuntime, type RuntimeOptions } from '../runtime/index.js';
import { secretFromEnv } from './spawn.js';

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? '{}') as RuntimeOptions;
  const secret = secretFromEnv();
  if (options.cluster !== undefined && secret !== undefined) options.cluster.secret ??= secret;
  const rt = await createRuntime({
    workers: 1,
    ...options,
    logger: (entry) => process.stderr.write(`[${entry.function}] ${entry.message}\n`),
  });
  const view = await rt.cluster();
  process.stdout.write(`ready ${view.self}\n`);
  let closing = false;
  const stop = (): void => {
    if (closing) return;
    closing = true;
    void rt.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: Error & { code?: string }) => {
  process.stderr.write(`nuvola host: ${err.code ?? 'error'}: ${err.message}\n`);
  process.exit(1);
});
