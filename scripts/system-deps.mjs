// First step of `npm test`: checks the system packages the suites need, so that the test
// command is self-sufficient on a fresh Debian machine with only Node and npm. When one is
// missing and we are root with apt-get, it installs them (and says so); otherwise it stops at
// once with the exact command to run. Plain Node ≥ 20 JavaScript with no dependencies: it runs
// before anything is built.
//
// What each package is for (and why the list is no longer):
// - redis-server: the state, global-tier and cluster suites start a throwaway Redis
//   (state/redis-server.ts). Any redis-server on the PATH will do.
// - libegl1, libegl-mesa0, libgl1-mesa-dri: the kernel suite asserts the GPU path. On a machine
//   without a GPU, Dawn runs it on Mesa's software OpenGL (llvmpipe) through EGL. Vulkan
//   (libvulkan1, mesa-vulkan-drivers) is not needed: Dawn refuses Debian 12's lavapipe, and
//   without a Vulkan driver it falls back to OpenGL.
// - clang, lld, wasi-libc, libclang-rt-N-dev-wasm32: the WASI suite's C guest
//   (test/setup/build-guests.ts); N is clang's major version (14 on Debian 12).
// - chromium: the status page of `nuvola serve` is tested in a real headless browser
//   (test/serve-status-page.test.ts, driven by puppeteer-core). Any chromium on the PATH will do.
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The packages the suites need, as `{ pkg, command? }`: with `command`, any program of that
 * name on the PATH satisfies it; without, the Debian package must be installed.
 */
export function requirements(clangMajor) {
  return [
    { pkg: 'redis-server', command: 'redis-server' },
    { pkg: 'libegl1' },
    { pkg: 'libegl-mesa0' },
    { pkg: 'libgl1-mesa-dri' },
    { pkg: 'clang' },
    { pkg: 'lld' },
    { pkg: 'wasi-libc' },
    { pkg: `libclang-rt-${clangMajor}-dev-wasm32` },
    { pkg: 'chromium', command: 'chromium' },
  ];
}

/**
 * Decides what to do. `sys` answers questions about the machine (injected by tests):
 * `installed(pkg)`, `hasCommand(name)`, `isRoot`, `hasApt`, `hasDpkg`, `clangMajor`.
 * Returns `{ action: 'none' }`, `{ action: 'install', missing, command }` or
 * `{ action: 'fail', missing, command, message }`.
 */
export function plan(sys) {
  if (!sys.hasDpkg) {
    // Not Debian: only programs can be checked, and no package names given.
    const missing = ['redis-server', 'clang', 'chromium'].filter((c) => !sys.hasCommand(c));
    if (missing.length === 0) return { action: 'none' };
    return {
      action: 'fail',
      missing,
      command: undefined,
      message:
        `missing ${missing.join(', ')}. The tests need redis-server, Mesa (EGL with the software renderer), ` +
        'clang with lld and wasi-libc for wasm32-wasi, and chromium; install them with your system package manager',
    };
  }
  const missing = requirements(sys.clangMajor)
    .filter((r) => !(r.command !== undefined && sys.hasCommand(r.command)) && !sys.installed(r.pkg))
    .map((r) => r.pkg);
  if (missing.length === 0) return { action: 'none' };
  const install = `apt-get install -y ${missing.join(' ')}`;
  if (sys.isRoot && sys.hasApt) return { action: 'install', missing, command: `apt-get update && ${install}` };
  return {
    action: 'fail',
    missing,
    command: `sudo apt-get update && sudo ${install}`,
    message: `missing system packages the tests need: ${missing.join(', ')}`,
  };
}

function run(cmd, args) {
  return spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function hasCommand(name) {
  return run('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** clang's major version: the installed clang's, else the one apt would install, else 14 (Debian 12). */
function clangMajor() {
  const version = run('clang', ['--version']);
  const installed = /clang version (\d+)/.exec(version.stdout ?? '');
  if (installed) return Number(installed[1]);
  const candidate = /Depends: clang-(\d+)/.exec(run('apt-cache', ['depends', 'clang']).stdout ?? '');
  return candidate ? Number(candidate[1]) : 14;
}

export function probeSystem() {
  const hasDpkg = hasCommand('dpkg-query');
  return {
    hasDpkg,
    hasApt: hasCommand('apt-get'),
    isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
    clangMajor: hasDpkg ? clangMajor() : 14,
    hasCommand,
    installed: (pkg) => run('dpkg-query', ['-W', '-f=${Status}', pkg]).stdout === 'install ok installed',
  };
}

function main() {
  const sys = probeSystem();
  const decision = plan(sys);
  if (decision.action === 'none') return 0;
  if (decision.action === 'fail') {
    console.error(`system-deps: ${decision.message}`);
    if (decision.command !== undefined) console.error(`system-deps: run this, then npm test again:\n\n  ${decision.command}\n`);
    return 1;
  }
  console.log(`system-deps: installing ${decision.missing.join(' ')} (the tests need them): ${decision.command}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', ...decision.missing],
  ]) {
    const r = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (r.status !== 0) {
      console.error(`system-deps: apt-get ${args[0]} failed (exit ${r.status}); run it yourself: ${decision.command}`);
      return 1;
    }
  }
  const after = plan(probeSystem());
  if (after.action !== 'none') {
    console.error(`system-deps: still missing after apt-get: ${after.missing.join(', ')}`);
    return 1;
  }
  console.log('system-deps: installed');
  return 0;
}

if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  process.exitCode = main();
}
