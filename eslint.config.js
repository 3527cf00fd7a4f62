import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Layering (issue 17): who may import whom, one block per folder; each folder's README says the
// same in words ("Thread and imports"). Import cycles are checked by scripts/check-cycles.mjs.
// A pattern matches the import's specifier, so it is written for the importing file's depth.
const up = String.raw`^(\.\./)+`;
const layer = (regex, message, allowTypeImports = false) => ({ regex, message, allowTypeImports });
const notTestCode = layer(`${up}(bench|test|examples)/`, 'production code does not import bench/, test/ or examples/');
// The main thread loads no worker-thread import code: outside runtime/capabilities and runtime/worker,
// only the capabilities' manifests and registry (the ABI as data), their api.ts and service.ts (the
// main-thread half), wasi/config.ts (WASI options) and the worker files the main thread uses too (the
// interrupt cell, its CPU words and the deadline watchdog's words, jco's component transpile); types from anywhere.
const hostOk = String.raw`(?!(registry|manifest|wasi/config|[a-z]+/(manifest|api|service))\.js$)`;
const workerOk = String.raw`(?!(interrupt|meter|component|deadline-watch)\.js$)`;
const mainThread = (prefix) => [
  layer(
    `${prefix}capabilities/${hostOk}`,
    'main-thread code imports from runtime/capabilities only the registry, manifests, api.ts, service.ts and wasi/config.ts (or types)',
    true,
  ),
  layer(
    `${prefix}worker/${workerOk}`,
    'main-thread code imports from runtime/worker only interrupt.ts, meter.ts, deadline-watch.ts and component.ts (or types)',
    true,
  ),
];
const restrict = (files, patterns, ignores = []) => ({
  files,
  ignores,
  rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] },
});
const layers = [
  restrict(
    ['state/**/*.ts'],
    [
      layer(
        `${up}runtime/(?!errors\\.js$)`,
        'state/ imports from runtime/ only errors.ts (the one set of error codes and classes, a leaf)',
      ),
      layer(`${up}(cluster|kernels|skeletons|bench|test|examples|guest)/`, 'state/ imports nothing of the project but runtime/errors.ts'),
    ],
  ),
  restrict(
    ['kernels/**/*.ts'],
    [
      layer(`${up}runtime/(?!(errors|transfer)\\.js$)`, 'kernels/ imports from runtime/ only errors.ts and transfer.ts'),
      layer(`${up}(state|cluster|skeletons|bench|test|examples|guest)/`, 'kernels/ imports only runtime/errors.ts and runtime/transfer.ts'),
    ],
  ),
  restrict(
    ['skeletons/**/*.ts'],
    [
      layer(
        `${up}runtime/(?!(index|input|frames)\\.js$)`,
        'skeletons/ is built on the public API (../runtime/index.js) and the leaves input.ts and frames.ts',
      ),
      layer(`${up}(state|cluster|kernels|bench|test|examples|guest)/`, 'skeletons/ is built on the public API only'),
    ],
  ),
  restrict(
    ['cluster/**/*.ts'],
    [notTestCode, layer(`${up}(skeletons|kernels|guest)/`, 'cluster/ imports runtime/ and state/ only'), ...mainThread(`${up}runtime/`)],
  ),
  restrict(
    ['runtime/snapshot/**/*.ts'],
    [
      layer(
        String.raw`^\.\./(?!(wasm-binary|errors)\.js$)`,
        'runtime/snapshot/ imports from outside only runtime/wasm-binary.ts and runtime/errors.ts',
      ),
    ],
  ),
  // Worker-thread code: nothing of the main thread's composition (pool, runtime, options, …).
  restrict(
    ['runtime/capabilities/**/*.ts', 'runtime/worker/**/*.ts'],
    [
      notTestCode,
      layer(`${up}(cluster|skeletons|cli)/`, 'worker-thread code does not import cluster/, skeletons/ or the CLI'),
      layer(`${up}kernels/`, 'worker-thread code imports only types from kernels/ (the kernel thread is reached by message)', true),
      layer(
        String.raw`(^|/)(pool|runtime|index|testing|admission|options|host-state|build|module-file)\.js$`,
        'worker-thread code does not import main-thread modules of runtime/',
        true,
      ),
    ],
    ['runtime/capabilities/*/service.ts'],
  ),
  // A capability's main-thread half: the store and the kernels, not the worker's code.
  restrict(
    ['runtime/capabilities/*/service.ts'],
    [notTestCode, layer(String.raw`^\./(guest|port)\.js$`, "a capability's service does not load its worker half", true)],
  ),
  restrict(
    ['runtime/*.ts'],
    [notTestCode, layer(`${up}(skeletons|serve|guest/examples)/`, 'runtime/ does not import skeletons/ or serve/'), ...mainThread('^\\./')],
  ),
  // `nuvola bench` runs the shipped benchmarks: runtime/cli/bench.ts is the one production file that imports bench/.
  restrict(['runtime/cli/**/*.ts'], [notTestCode, ...mainThread(String.raw`^\.\./`)], ['runtime/cli/bench.ts']),
  restrict(['runtime/cli/bench.ts'], mainThread(String.raw`^\.\./`)),
  restrict(
    ['examples/**/*.ts'],
    [layer(`${up}(runtime|state|cluster|kernels|skeletons|bench|test)/`, "examples import the package ('nuvola') as a user would")],
  ),
  restrict(['bench/**/*.ts'], [layer(`${up}test/`, 'bench/ does not import test/')]),
  // serve/ (issue 22): built on the public API, plus the leaves errors.ts and option-spec.ts (its options schema).
  restrict(
    ['serve/**/*.ts'],
    [
      notTestCode,
      layer(
        `${up}runtime/(?!(index|errors|option-spec)\\.js$)`,
        'serve/ is built on the public API (../runtime/index.js) and the leaves errors.ts and option-spec.ts',
      ),
      layer(`${up}(state|cluster|kernels|skeletons|guest)/`, 'serve/ is built on the public API only'),
    ],
  ),
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'guest/sdk/nuvola/*.ts',
      '!guest/sdk/nuvola/abi.ts',
      '**/guests/**',
      'guest/examples/**',
      'coverage/**',
      'scratch/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        setImmediate: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        clearTimeout: 'readonly',
        queueMicrotask: 'readonly',
        performance: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        SharedArrayBuffer: 'readonly',
        Atomics: 'readonly',
        WebAssembly: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  ...layers,
);
