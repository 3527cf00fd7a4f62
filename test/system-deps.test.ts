// scripts/system-deps.mjs, the first step of `npm test`: its decision with an injected view of
// the machine (nothing is installed or removed), and the real script on this machine, which
// has everything (so it must do nothing).
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { plan, probeSystem, requirements, type System } from '../scripts/system-deps.mjs';

const all = requirements(14).map((r) => r.pkg);

function machine(over: Partial<System> & { absent?: string[]; commands?: string[] } = {}): System {
  const absent = new Set(over.absent ?? []);
  const commands = new Set(over.commands ?? []);
  return {
    hasDpkg: true,
    hasApt: true,
    isRoot: true,
    clangMajor: 14,
    hasCommand: (name) => commands.has(name),
    installed: (pkg) => !absent.has(pkg),
    ...over,
  };
}

describe('system-deps plan', () => {
  it('does nothing when every package is installed', () => {
    expect(plan(machine())).toEqual({ action: 'none' });
  });

  it('as root with apt-get, installs exactly what is missing', () => {
    expect(plan(machine({ absent: ['redis-server', 'wasi-libc'] }))).toEqual({
      action: 'install',
      missing: ['redis-server', 'wasi-libc'],
      command: 'apt-get update && apt-get install -y redis-server wasi-libc',
    });
  });

  it('without root, fails with the exact command to run', () => {
    const p = plan(machine({ isRoot: false, absent: ['libegl-mesa0', 'lld'] }));
    expect(p).toMatchObject({ action: 'fail', missing: ['libegl-mesa0', 'lld'] });
    expect(p.action === 'fail' && p.command).toBe('sudo apt-get update && sudo apt-get install -y libegl-mesa0 lld');
  });

  it('without apt-get, fails even as root', () => {
    expect(plan(machine({ hasApt: false, absent: ['clang'] }))).toMatchObject({ action: 'fail', missing: ['clang'] });
  });

  it('takes a redis-server on the PATH that no package installed', () => {
    expect(plan(machine({ absent: ['redis-server'], commands: ['redis-server'] }))).toEqual({ action: 'none' });
  });

  it("names the wasm32 runtime library after clang's major version", () => {
    expect(plan(machine({ clangMajor: 19, absent: ['libclang-rt-19-dev-wasm32'] }))).toMatchObject({
      missing: ['libclang-rt-19-dev-wasm32'],
    });
    expect(plan(machine({ clangMajor: 19, absent: ['libclang-rt-14-dev-wasm32'] }))).toEqual({ action: 'none' });
  });

  it('lists every package once, Vulkan not among them', () => {
    expect(new Set(all).size).toBe(all.length);
    expect(all).not.toContain('mesa-vulkan-drivers');
    expect(plan(machine({ absent: all })).action === 'install' && plan(machine({ absent: all }))).toMatchObject({ missing: all });
  });

  it('off Debian, checks programs and names them', () => {
    const p = plan(machine({ hasDpkg: false, commands: ['clang', 'chromium'] }));
    expect(p).toMatchObject({ action: 'fail', missing: ['redis-server'], command: undefined });
    expect(plan(machine({ hasDpkg: false, commands: ['clang', 'redis-server', 'chromium'] }))).toEqual({ action: 'none' });
  });

  it("installs Debian's chromium for the status page's browser test, or names the exact command when not root", () => {
    expect(plan(machine({ absent: ['chromium'] }))).toEqual({
      action: 'install',
      missing: ['chromium'],
      command: 'apt-get update && apt-get install -y chromium',
    });
    expect(plan(machine({ isRoot: false, absent: ['chromium'] }))).toMatchObject({
      action: 'fail',
      command: 'sudo apt-get update && sudo apt-get install -y chromium',
    });
    expect(plan(machine({ absent: ['chromium'], commands: ['chromium'] }))).toEqual({ action: 'none' });
  });
});

describe('system-deps on this machine', () => {
  it('finds everything installed and exits 0 without output', () => {
    expect(plan(probeSystem())).toEqual({ action: 'none' });
    const out = execFileSync(process.execPath, [new URL('../scripts/system-deps.mjs', import.meta.url).pathname], { encoding: 'utf8' });
    expect(out).toBe('');
  });
});
