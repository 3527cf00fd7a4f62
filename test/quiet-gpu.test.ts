// scripts/quiet-gpu.mjs, which `npm run demo`, `npm test` and `npm run bench` run through: it
// drops Dawn's driver noise from stderr and nothing else, and NUVOLA_GPU_DEBUG=1 shows it all.
// The last two tests open a real adapter (Mesa's software renderer on a machine without a GPU).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { noiseFilter } from '../scripts/quiet-gpu.mjs';

const script = new URL('../scripts/quiet-gpu.mjs', import.meta.url).pathname;
const webgpu = new URL('../node_modules/webgpu/index.js', import.meta.url).pathname;

function kept(text: string): string {
  const keep = noiseFilter();
  return text
    .split('\n')
    .filter((line) => keep(line))
    .join('\n');
}

describe('noiseFilter', () => {
  it("drops Dawn's messages with their context, source line and trailing blank", () => {
    const noise = [
      'error: XDG_RUNTIME_DIR is invalid or not set in the environment.',
      'Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.',
      ' - While initializing adapter (backend=BackendType::Vulkan)',
      '    at InitializeImpl (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/PhysicalDeviceVk.cpp:257)',
      '',
      'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 90 to 16 to fit dynamic offset allocation limit.',
      'Error: Loader Message: setup_loader_term_phys_devs:  Failed to detect any valid GPUs in the current config',
      'Warning: vkEnumeratePhysicalDevices',
      '    at GatherPhysicalDevices (/x/third_party/dawn/src/dawn/native/vulkan/VulkanInfo.cpp:147)',
      '',
    ];
    expect(kept(['first', ...noise, 'last'].join('\n'))).toBe('first\nlast');
  });

  it('keeps everything else: errors, stacks, Node warnings, blank lines of their own', () => {
    const other = [
      'Error: E_TIMEOUT function slow timed out',
      '    at Runtime.invoke (file:///app/dist/runtime/runtime.js:10:5)',
      '',
      '(node:123) Warning: something deprecated',
      'Warning: a line of some other program',
      ' - While a test ran',
      '',
    ].join('\n');
    expect(kept(other)).toBe(other);
  });
});

describe('quiet-gpu around a process that opens a WebGPU adapter', () => {
  const child = `
    process.stderr.write('before\\n');
    const { create } = await import(${JSON.stringify(webgpu)});
    const gpu = create([]);
    globalThis.gpu = gpu;
    await gpu.requestAdapter();
    const gl = create(['backend=opengl']);
    globalThis.gl = gl;
    const adapter = await gl.requestAdapter({ featureLevel: 'compatibility' });
    process.stderr.write('after ' + (adapter !== null) + '\\n');
    process.exit(3);`;
  const run = (debug: boolean) =>
    spawnSync(process.execPath, [script, process.execPath, '--input-type=module', '-e', child], {
      encoding: 'utf8',
      env: { ...process.env, EGL_PLATFORM: 'surfaceless', NUVOLA_GPU_DEBUG: debug ? '1' : '' },
    });

  it("passes the program's own stderr and exit code, without the noise", () => {
    const r = run(false);
    expect(r.status).toBe(3);
    expect(r.stderr).toBe('before\nafter true\n');
  });

  it('with NUVOLA_GPU_DEBUG=1 shows what Dawn printed', () => {
    const r = run(true);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/^Warning: max\w+ artificially reduced/m);
    expect(r.stderr).toContain('after true\n');
  });
});
