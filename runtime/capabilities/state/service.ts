/**
 * Main thread. Carries out the state requests workers send (StateApi) on the process's one
 * {@link StateStore}. Every key is checked here again: a worker's word is not trusted.
 */
import { checkKey, type StateStore } from '../../../state/store.js';
import type { Service } from '../../rpc.js';
import type { StateApi } from './api.js';

export function stateService(store: StateStore): Service<StateApi> {
  const keyed =
    <A extends unknown[], R>(fn: (key: string, ...args: A) => R) =>
    (key: string, ...args: A): R => {
      checkKey(key);
      return fn(key, ...args);
    };
  return {
    lookup: keyed((key, fn) => store.lookup(key, fn)),
    ensure: keyed((key, size, held, fn) => store.ensure(key, size, held, fn)),
    pullRanges: keyed((key, ranges, held) => store.pullRanges(key, ranges, held)),
    pull: keyed((key, held, fn) => store.pull(key, held, fn)),
    mapRegion: keyed((key, size, fn, ownMaps) => store.mapRegion(key, size, fn, ownMaps)),
    push: keyed((key, partial, held, lease) => store.push(key, partial, held, lease)),
    delete: keyed((key, held) => store.delete(key, held)),
    append: keyed((key, data, fn) => store.append(key, data, fn)),
    readAppended: keyed((key) => store.global.readAppended(key)),
    clearAppended: keyed((key) => store.clearAppended(key)),
    lockGlobal: keyed((key, mode, deadline) => store.lockGlobal(key, mode, deadline)),
    unlockGlobal: (lease) => store.unlockGlobal(lease),
    incrementGlobal: keyed((key, delta) => store.global.increment(key, delta)),
    compareAndSwapGlobal: keyed((key, expected, value) => store.global.compareAndSwap(key, expected, value)),
  };
}
