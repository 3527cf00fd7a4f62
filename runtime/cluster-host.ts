/**
 * Main thread. Joins the cluster of `options.cluster`: the adapter from this runtime (its
 * function registry, state store and pool) to the `LocalHost` port cluster/ declares. The
 * cluster code is loaded here, on first use, not with the package.
 */
import { ErrorCode, RegistryError } from './errors.js';
import { FUNCTION_DEFAULTS, type FunctionOptions, type ResolvedRuntimeOptions } from './options.js';
import type { Pool } from './pool.js';
import type { StateStore } from '../state/store.js';
import type { Cluster } from '../cluster/cluster.js';
import type { FunctionRegistry } from './function-registry.js';

/** `checkOpen` throws E_CLOSED once the runtime is closed (a fetched module's register checks it). */
export async function joinCluster(
  options: ResolvedRuntimeOptions,
  functions: FunctionRegistry,
  store: StateStore,
  pool: Pool,
  checkOpen: () => void,
): Promise<Cluster> {
  const settings = options.cluster!;
  // Loaded here, not with the package: only cluster mode needs it.
  const { Cluster } = await import('../cluster/cluster.js');
  return Cluster.join(settings, options.redis!, {
    workers: options.workers,
    defaultTimeoutMs: FUNCTION_DEFAULTS.timeoutMs,
    hashOf: (name) => functions.hashOf(name),
    holds: (key) => store.holds(key),
    registerFetched: async (name, bytes, fnOptions, replace) => {
      if (replace) {
        // Registered again in the cluster with other code: the copy fetched before goes.
        if (!functions.fetched.has(name)) {
          throw new RegistryError(
            ErrorCode.ALREADY_REGISTERED,
            `host '${settings.hostId}' has its own function '${name}' with other code than cluster '${settings.name}' has under the name; unregister() it here`,
            { function: name, cluster: settings.name },
          );
        }
        functions.unregisterModule(name);
      } else if (functions.modules.has(name)) {
        return; // raced by a local register() of the same name: that one stands
      }
      await functions.registerModule(name, bytes, fnOptions as FunctionOptions, checkOpen);
      functions.fetched.add(name);
    },
    run: (name, input, timeoutMs) => pool.invoke(name, input, timeoutMs),
    runPart: (name, size, input, timeoutMs, part) => pool.invokeGroup(name, size, input, timeoutMs, 'spread', part),
    deliver: (id, from, to, data) => pool.deliver(id, from, to, data),
    abortPart: (id, error) => pool.abortPart(id, error),
    log: (level, message) => options.logger({ function: 'nuvola', level, message }),
  });
}
