/**
 * Main thread. The functions registered with a runtime: guest modules (checked, compiled and
 * registered with the pool) and host handlers, names reserved while a register is under way,
 * and in cluster mode each module's content hash and which were fetched from the cluster.
 */
import { fileURLToPath } from 'node:url';
import { ErrorCode, InvalidOptionError, ModuleError, RegistryError } from './errors.js';
import { checkModule, isComponent, type CheckedModule } from './module-check.js';
import { prepareComponent } from './component.js';
import { moduleTooLarge, readModuleFile } from './module-file.js';
import type { ComponentCode, FunctionSpec } from './protocol.js';
import {
  FUNCTION_NAME,
  resolveFunctionOptions,
  type FunctionOptions,
  type ResolvedFunctionOptions,
  type ResolvedRuntimeOptions,
} from './options.js';
import type { Pool } from './pool.js';
import type { HandlerEntry } from './host-handler.js';
import type { FunctionInfo, HostHandler } from './runtime-types.js';
import { moduleHash } from '../cluster/outcome.js';

export class FunctionRegistry {
  /** Host handlers, by name. */
  readonly handlers = new Map<string, HandlerEntry>();
  /** Names a register() is under way for. */
  private readonly reserved = new Set<string>();
  /** Cluster mode: the content hash of each registered module's bytes. */
  private readonly hashes = new Map<string, string>();
  /** Cluster mode: names registered here from the cluster's registry (not by register()). */
  readonly fetched = new Set<string>();

  constructor(
    private readonly options: ResolvedRuntimeOptions,
    private readonly pool: Pool,
    /** The guest modules registered here, with their options (the store reads their stateQuota). */
    readonly modules: Map<string, ResolvedFunctionOptions>,
  ) {}

  /** Whether `name` is a registered guest module or host handler. */
  has(name: string): boolean {
    return this.modules.has(name) || this.handlers.has(name);
  }

  /** Cluster mode: the content hash of module `name`. */
  hashOf(name: string): string | undefined {
    return this.hashes.get(name);
  }

  /** Names of the registered functions (guest modules and host handlers). */
  names(): string[] {
    return [...this.modules.keys(), ...this.handlers.keys()];
  }

  /** What kind of function `name` is and the options it was registered with. */
  describe(name: string): FunctionInfo {
    const handler = this.handlers.get(name);
    if (handler !== undefined) return { name, kind: 'handler', timeoutMs: handler.timeoutMs, handler: handler.handler };
    const fn = this.modules.get(name);
    if (fn === undefined) throw unknownFunction(name);
    return {
      name,
      kind: 'wasm',
      timeoutMs: fn.timeoutMs,
      reuse: fn.reuse,
      abi: fn.abi === 'auto' ? 'nuvola' : fn.abi,
      ...(fn.stateKeys === undefined ? {} : { stateKeys: [...fn.stateKeys] }),
      ...(fn.callees === undefined ? {} : { callees: [...fn.callees] }),
    };
  }

  /**
   * Checks, compiles and registers a guest module on this host's workers; returns its bytes.
   * `checkOpen` runs again once the module is compiled (the runtime may have closed meanwhile).
   */
  async registerModule(
    name: string,
    wasm: Uint8Array | ArrayBuffer | string,
    options: FunctionOptions | undefined,
    checkOpen: () => void,
  ): Promise<Uint8Array> {
    const fnOptions = resolveFunctionOptions(options, this.options.maxInstances);
    if (this.modules.has(name) || this.handlers.has(name) || this.reserved.has(name)) {
      throw new RegistryError(
        ErrorCode.ALREADY_REGISTERED,
        `a function named '${name}' is already registered; unregister() it first or pick another name`,
        {
          function: name,
        },
      );
    }
    this.reserved.add(name);
    try {
      const bytes = await this.loadBytes(name, wasm);
      const component = isComponent(bytes);
      if (component !== (fnOptions.abi === 'component') && fnOptions.abi !== 'auto') {
        throw new ModuleError(
          ErrorCode.INVALID_MODULE,
          component
            ? `function '${name}' is a WebAssembly component, registered with abi: '${fnOptions.abi}'; register it with abi: 'component' (or leave abi out)`
            : `function '${name}' is registered with abi: 'component', but its bytes are a core WebAssembly module, not a component`,
          { function: name, abi: fnOptions.abi },
        );
      }
      let checked: CheckedModule;
      let code: ComponentCode | undefined;
      if (component) {
        ({ checked, code } = await prepareComponent(name, bytes, fnOptions.memoryLimitPages, this.options.componentCacheDir, {
          fuel: fnOptions.fuel !== undefined,
        }));
      } else {
        checked = await checkModule(name, bytes, fnOptions.memoryLimitPages, fnOptions.abi === 'component' ? 'auto' : fnOptions.abi, {
          fuel: fnOptions.fuel !== undefined,
        });
      }
      checkEnforceable(name, fnOptions, checked);
      if (checked.abi === 'wasi' && fnOptions.reuse === 'keep') {
        throw new InvalidOptionError(
          ErrorCode.INVALID_OPTION,
          `function '${name}' is a WASI command, which runs once per instance: reuse: 'keep' does not apply; leave reuse out`,
          { path: 'options.reuse' },
        );
      }
      checkOpen();
      const spec: FunctionSpec = {
        name,
        module: checked.module,
        layout: checked.layout,
        reuse: fnOptions.reuse,
        suspends: checked.suspends,
        memoryLimitPages: fnOptions.memoryLimitPages,
        stateKeys: fnOptions.stateKeys,
        callees: fnOptions.callees,
        timeoutMs: fnOptions.timeoutMs,
        abi: checked.abi,
        wasi: fnOptions.wasi,
        concurrency: { limit: fnOptions.maxConcurrency, running: new SharedArrayBuffer(4) },
      };
      if (code !== undefined) spec.component = code;
      if (fnOptions.cpuLimitMs !== undefined) spec.cpuLimitMs = fnOptions.cpuLimitMs;
      if (fnOptions.fuel !== undefined) spec.fuel = fnOptions.fuel;
      if (checked.sources !== undefined) spec.sources = checked.sources;
      await this.pool.register(spec, checked.segments, fnOptions.timeoutMs);
      fnOptions.abi = checked.abi;
      if (checked.layout.resetNote !== undefined && fnOptions.reuse === 'reset') {
        this.options.logger({ function: 'nuvola', level: 'warn', message: `function '${name}': ${checked.layout.resetNote}` });
      }
      this.modules.set(name, fnOptions);
      if (this.options.cluster !== undefined) this.hashes.set(name, moduleHash(bytes));
      return bytes;
    } finally {
      this.reserved.delete(name);
    }
  }

  private async loadBytes(name: string, wasm: Uint8Array | ArrayBuffer | string): Promise<Uint8Array> {
    let bytes: Uint8Array;
    if (typeof wasm === 'string') {
      bytes = await readModuleFile(name, wasm, this.options.maxModuleBytes);
    } else if (wasm instanceof Uint8Array) {
      bytes = wasm;
    } else if (wasm instanceof ArrayBuffer) {
      bytes = new Uint8Array(wasm);
    } else {
      throw new InvalidOptionError(
        ErrorCode.INVALID_OPTION,
        `register('${name}', wasm): wasm must be a Uint8Array, an ArrayBuffer or a file path`,
        {
          path: 'wasm',
        },
      );
    }
    if (bytes.byteLength > this.options.maxModuleBytes) throw moduleTooLarge(name, bytes.byteLength, this.options.maxModuleBytes);
    return bytes;
  }

  /** Adds a host handler (see Runtime.registerHandler), after checking it and its options. */
  addHandler(name: string, handler: HostHandler, options?: { timeoutMs?: number }): void {
    if (typeof handler !== 'function') {
      throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `registerHandler('${name}', handler): handler must be a function`, {
        path: 'handler',
      });
    }
    if (
      options !== undefined &&
      (options === null || typeof options !== 'object' || Object.keys(options).some((key) => key !== 'timeoutMs'))
    ) {
      throw new InvalidOptionError(
        ErrorCode.INVALID_OPTION,
        `registerHandler('${name}', handler, options): options may only be { timeoutMs }`,
        {
          path: 'options',
        },
      );
    }
    const { timeoutMs } = resolveFunctionOptions(options === undefined ? {} : { timeoutMs: options.timeoutMs });
    if (this.modules.has(name) || this.handlers.has(name) || this.reserved.has(name)) {
      throw new RegistryError(
        ErrorCode.ALREADY_REGISTERED,
        `a function named '${name}' is already registered; unregister() it first or pick another name`,
        { function: name },
      );
    }
    this.handlers.set(name, { handler, timeoutMs });
  }

  /** Removes guest module `name` from this host (its workers and the bookkeeping). */
  unregisterModule(name: string): void {
    this.modules.delete(name);
    this.hashes.delete(name);
    this.fetched.delete(name);
    this.pool.unregister(name);
  }
}

export function checkName(name: string): void {
  if (typeof name !== 'string' || !FUNCTION_NAME.test(name)) {
    throw new InvalidOptionError(
      ErrorCode.INVALID_OPTION,
      `function name must be 1 to 128 characters of letters, digits and _ . : / -, got ${JSON.stringify(name)}`,
      { path: 'name' },
    );
  }
}

/** `cpuLimitMs` and `fuel` need the checks the rewrite adds, which code it cannot follow lacks. */
function checkEnforceable(name: string, options: ResolvedFunctionOptions, checked: CheckedModule): void {
  const why = checked.layout.resetNote ?? 'its code could not be instrumented';
  for (const [path, needed] of [
    ['cpuLimitMs', options.cpuLimitMs !== undefined && !checked.layout.interruptible],
    ['fuel', options.fuel !== undefined && !checked.layout.fuel],
  ] as const) {
    if (!needed) continue;
    throw new InvalidOptionError(
      ErrorCode.INVALID_OPTION,
      `option options.${path} cannot be enforced for function '${name}': ${why}; leave ${path} out (timeoutMs still applies)`,
      { path: `options.${path}`, function: name },
    );
  }
}

export function unknownFunction(name: string): RegistryError {
  return new RegistryError(ErrorCode.UNKNOWN_FUNCTION, `no function named '${name}' is registered; register() it first`, {
    function: name,
  });
}

/** The file a module URL names (`new URL('./f.wasm', import.meta.url)`); only `file:` URLs. */
export function modulePath(url: URL): string {
  if (url.protocol !== 'file:') {
    throw new InvalidOptionError(
      ErrorCode.INVALID_OPTION,
      `register() takes a file: URL or a path, not ${url.protocol} (${url.href}); fetch the bytes and pass them`,
      {
        path: 'wasm',
      },
    );
  }
  return fileURLToPath(url);
}
