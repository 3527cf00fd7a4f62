// A hostile guest against the WASI sandbox (test/guests/wasi/attack.ts): what it may never do
// through any import, and holes found in review (each fails without its fix).
import {
  lstatSync,
  mkdirSync,
  statSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NuvolaError } from 'nuvola';
import { afterAll, describe, expect, it } from 'vitest';
import { crashWorker, until } from 'nuvola/testing';
import { closedAfterEach, guestBytes, text, openHere } from './helpers.js';

const runtime = closedAfterEach();

const area = mkdtempSync(join(tmpdir(), 'nuvola-wasi-attack-'));
const outside = join(area, 'outside');
mkdirSync(outside);
writeFileSync(join(outside, 'secret.txt'), 'secret\n');
afterAll(() => rmSync(area, { recursive: true, force: true }));

const lines = (out: Uint8Array): string[] => text(out).trim().split('\n');

function fresh(name: string): string {
  const dir = join(area, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'file.txt'), 'inside\n');
  mkdirSync(join(dir, 'sub'));
  return dir;
}

describe('WASI sandbox against a hostile guest', () => {
  it('holds: links out, .., loops, read-only grants, rights, renumber (each answer checked)', async () => {
    const w = fresh('w');
    const r = fresh('r');
    symlinkSync('../outside', join(w, 'up'));
    symlinkSync(join(outside, 'secret.txt'), join(w, 'abs'));
    symlinkSync('loop', join(w, 'loop'));
    symlinkSync('../outside/new.txt', join(w, 'dangling'));
    symlinkSync('../outside/secret.txt', join(w, 'tout'));
    execFileSync('mkfifo', [join(w, 'pipe')]);
    symlinkSync('pipe', join(w, 'plink'));
    symlinkSync('/proc', join(w, 'proc'));
    const { rt } = await runtime({ workers: 1 });
    await rt.register('a', guestBytes('wasi_attack'), {
      wasi: {
        dirs: [
          { host: w, guest: '/w', writable: true },
          { host: r, guest: '/r' },
        ],
      },
    });
    // [command, answer]: 76 ENOTCAPABLE, 69 EROFS, 32 ELOOP, 20 EEXIST, 54 ENOTDIR, 44 ENOENT.
    const script: [string, string][] = [
      ['open 3 up/secret.txt', 'open errno 76'],
      ['open 3 abs', 'open errno 76'],
      ['open 3 loop', 'open errno 32'],
      ['open 3 ../w/file.txt', 'open errno 76'],
      ['open 3 sub/../../w', 'open errno 76'],
      ['create 3 dangling', 'create errno 20'], // O_EXCL: the link exists, nothing created outside
      ['creat 3 dangling', 'creat errno 76'],
      ['trunc 3 tout', 'trunc errno 76'],
      ['open 3 plink', 'open errno 2'], // a FIFO through a link: EACCES at once
      ['opendir 3 pipe', 'opendir errno 54'],
      ['opendir 3 plink', 'opendir errno 54'],
      ['write 3 dangling', 'write errno 76'],
      ['opendir 3 up', 'opendir errno 76'],
      ['opendir 3 up/', 'opendir errno 76'],
      ['stat 3 up/', 'stat errno 76 type 0'],
      ['lstat 3 up/', 'lstat errno 76 type 0'], // a trailing slash follows, as the kernel would
      ['stat 3 abs', 'stat errno 76 type 0'],
      ['times 3 up/', 'times errno 76'],
      ['times 3 -h', 'times errno 44'], // a leaf that looks like an option is a name to touch
      ['times 3 abs', 'times errno 0'], // the link itself (inside), never its target
      ['timesf 3 abs', 'timesf errno 76'],
      ['timesf 3 up/secret.txt', 'timesf errno 76'],
      ['open 3 ../../proc/self/environ', 'open errno 76'],
      ['open 3 proc/self/environ', 'open errno 76'], // proc -> /proc
      ['link 3 up/secret.txt 3 x', 'link errno 76'],
      ['link 3 file.txt 3 up/x', 'link errno 76'],
      ['linkf 3 abs 3 x', 'linkf errno 76'],
      ['linkf 3 tout 3 x', 'linkf errno 76'],
      ['narrow 3 sub', 'narrow errno 0 fd 5'], // inherits FD_READ only
      ['write 5 new.txt', 'write errno 44'],
      ['open 3 sub/new.txt', 'open errno 44'],
      ['create 5 new.txt', 'create errno 0 fd 6'],
      ['fdwrite 6', 'fdwrite errno 76'], // asked for FD_WRITE, inherited FD_READ only
      ['rights 6', 'rights errno 76'],
      ['close 6', 'close errno 0'],
      ['close 5', 'close errno 0'],
      ['mkdir 3 dangling/', 'mkdir errno 20'], // mkdirat never follows the last component
      ['mkdir 3 up/x', 'mkdir errno 76'],
      ['unlink 3 up/', 'unlink errno 54'],
      ['unlink 3 dangling/', 'unlink errno 54'],
      ['rename 4 file.txt 3 moved.txt', 'rename errno 69'], // out of a read-only grant
      ['rename 3 file.txt 4 moved.txt', 'rename errno 69'], // into one
      ['link 4 file.txt 3 l.txt', 'link errno 69'],
      ['link 3 file.txt 4 l.txt', 'link errno 69'],
      ['symlink /etc 3 etc', 'symlink errno 76'],
      ['write 4 file.txt', 'write errno 69'],
      ['open 4 file.txt', 'open errno 0 fd 5'],
      ['fdwrite 5', 'fdwrite errno 76'],
      ['pwrite 5', 'pwrite errno 76'],
      ['rights 5', 'rights errno 76'], // rights only ever drop
      ['read 5', 'read errno 0 inside'],
      ['size 5', 'size errno 76'],
      ['fdtimes 5', 'fdtimes errno 76'],
      ['trunc 4 file.txt', 'trunc errno 69'],
      ['rmdir 4 sub', 'rmdir errno 69'],
      ['fdtimes 4', 'fdtimes errno 69'],
      ['opendir 4 sub', 'opendir errno 0 fd 6'], // asked with every right: still read-only
      ['create 6 new.txt', 'create errno 69'],
      ['mkdir 6 x', 'mkdir errno 69'],
      ['times 4 file.txt', 'times errno 69'],
      ['mkdir 4 x', 'mkdir errno 69'],
      ['symlink x 4 y', 'symlink errno 69'],
      ['unlink 4 file.txt', 'unlink errno 69'],
      ['renumber 4 3', 'renumber errno 0'], // the read-only grant over the writable one
      ['write 3 file.txt', 'write errno 69'], // fd 3 is now the read-only grant
      ['open 4 file.txt', 'open errno 8'], // the old number is gone
    ];
    const out = await rt.invoke('a', script.map(([cmd]) => cmd).join('\n'));
    expect(lines(out.output)).toEqual(script.map(([, answer]) => answer));
    expect(readdirSync(outside)).toEqual(['secret.txt']);
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('secret\n');
    expect(statSync(join(outside, 'secret.txt')).mtimeMs).toBeGreaterThan(1000);
    expect(lstatSync(join(w, 'abs')).mtimeMs).toBe(1000);
    expect(rt.stats().workerRestarts).toBe(0);
    expect(readdirSync(r).sort()).toEqual(['file.txt', 'sub']);
    expect(readFileSync(join(r, 'file.txt'), 'utf8')).toBe('inside\n');
  });
});

describe('WASI sandbox against a hostile guest: descriptors', () => {
  it('a directory moved away from under its descriptor: .. from it still stops at it', async () => {
    const a = fresh('moveA');
    const b = fresh('moveB');
    mkdirSync(join(a, 'sub', 'deep'), { recursive: true });
    const { rt } = await runtime({ workers: 1 });
    await rt.register('a', guestBytes('wasi_attack'), {
      wasi: {
        dirs: [
          { host: a, guest: '/a', writable: true },
          { host: b, guest: '/b', writable: true },
        ],
      },
    });
    // fd 5 is a/sub; moved into grant b, its parent is now b: never reachable through fd 5.
    const out = await rt.invoke(
      'a',
      'opendir 3 sub\nrename 3 sub 4 sub\nopen 5 ../file.txt\nstat 5 deep/../../file.txt\nopendir 5 ..\nopen 4 file.txt',
    );
    expect(lines(out.output)).toEqual([
      'opendir errno 0 fd 5',
      'rename errno 0',
      'open errno 76',
      'stat errno 76 type 0',
      'opendir errno 76',
      'open errno 0 fd 6',
    ]);
  });

  it('a call that traps holding descriptors gives them all back', async () => {
    const w = fresh('traps');
    const { rt } = await runtime({ workers: 1 });
    await rt.register('a', guestBytes('wasi_attack'), { wasi: { dirs: [{ host: w, guest: '/w' }] } });
    const file = join(w, 'file.txt');
    for (let i = 0; i < 20; i++) {
      // 20 × 255 > 4096: were any kept, the process budget would run out.
      await expect(rt.invoke('a', 'many 3 file.txt 255\ntrap')).rejects.toMatchObject({ code: 'E_GUEST_TRAP' });
    }
    expect(openHere(file) + openHere(w)).toBe(0);
    expect(lines((await rt.invoke('a', 'many 3 file.txt 300')).output)).toEqual(['many 255 errno 33']);
    expect(openHere(file) + openHere(w)).toBe(0);
  });
  it('a call interrupted at its timeout holding descriptors gives them all back (its worker goes on)', async () => {
    const w = fresh('timeouts');
    const { rt } = await runtime({ workers: 1 });
    await rt.register('a', guestBytes('wasi_attack'), { timeoutMs: 300, wasi: { dirs: [{ host: w, guest: '/w' }] } });
    // 17 calls each holding 255 descriptors: 17 × 255 > 4096, so were the descriptors of
    // interrupted calls not given back, the next call would get ENFILE.
    for (let i = 0; i < 17; i++) {
      await expect(rt.invoke('a', 'many 3 file.txt 255\nspin')).rejects.toMatchObject({ code: 'E_TIMEOUT' });
    }
    expect(rt.stats()).toMatchObject({ interrupts: 17, workerRestarts: 0 });
    expect(lines((await rt.invoke('a', 'many 3 file.txt 300')).output)).toEqual(['many 255 errno 33']);
    expect(openHere(join(w, 'file.txt'))).toBe(0);
  });

  it('a worker lost while its calls hold descriptors gives them all back (its count is zeroed)', async () => {
    const w = fresh('crashes');
    const { rt } = await runtime({ workers: 1 });
    await rt.register('a', guestBytes('wasi_attack'), { timeoutMs: 30_000, wasi: { dirs: [{ host: w, guest: '/w' }] } });
    const file = join(w, 'file.txt');
    // 17 workers lost, each while a call holds 255 descriptors: were their counts kept, the
    // next call would get ENFILE.
    for (let i = 0; i < 17; i++) {
      const call = rt.invoke('a', 'many 3 file.txt 255\nspin').catch((e: NuvolaError) => e.code);
      await until(() => openHere(file) >= 255);
      crashWorker(rt, 0);
      expect(await call).toBe('E_WORKER_LOST');
      await until(() => openHere(file) === 0);
    }
    expect(rt.stats().workerRestarts).toBeGreaterThanOrEqual(17);
    expect(lines((await rt.invoke('a', 'many 3 file.txt 300')).output)).toEqual(['many 255 errno 33']);
  });
});

describe('WASI holes found in review (each test fails without its fix)', () => {
  it('a readdir cookie past 2^63 (negative as i64) lists nothing, it does not crash the import', async () => {
    const w = fresh('cookie');
    const { rt } = await runtime({ workers: 1 });
    await rt.register('a', guestBytes('wasi_attack'), { wasi: { dirs: [{ host: w, guest: '/w' }] } });
    const out = await rt.invoke('a', 'cookie 3 -1\ncookie 3 -9223372036854775808\ncookie 3 2');
    expect(lines(out.output)).toEqual([
      'cookie errno 0 used 0',
      'cookie errno 0 used 0',
      expect.stringMatching(/^cookie errno 0 used [1-9]/),
    ]);
  });

  it('a path the kernel refuses half-way (a name over NAME_MAX after a directory) answers an errno and leaks no descriptor', async () => {
    const w = fresh('long');
    const deep = join(w, 'sub', 'a', 'b', 'c');
    mkdirSync(deep, { recursive: true });
    const { rt } = await runtime({ workers: 1 });
    await rt.register('a', guestBytes('wasi_attack'), { wasi: { dirs: [{ host: w, guest: '/w' }] } });
    const long = 'x'.repeat(300);
    const before = openHere(deep) + openHere(join(w, 'sub'));
    for (let i = 0; i < 5; i++) {
      const out = await rt.invoke('a', `stat 3 sub/a/b/c/${long}\nstat 3 sub/${long}\nlstat 3 sub/a/b/c/${long}`);
      expect(lines(out.output)).toEqual(['stat errno 37 type 0', 'stat errno 37 type 0', 'lstat errno 37 type 0']);
    }
    expect(openHere(deep) + openHere(join(w, 'sub'))).toBe(before);
  });

  it('a path longer than PATH_MAX (4096 bytes) is refused with ENAMETOOLONG before it is decoded or walked', async () => {
    const w = fresh('pathmax');
    const { rt } = await runtime({ workers: 1 });
    await rt.register('a', guestBytes('wasi_attack'), { wasi: { dirs: [{ host: w, guest: '/w', writable: true }] } });
    const fits = `${'./'.repeat(2044)}file.txt`; // 4096 bytes
    const over = `${'./'.repeat(20000)}file.txt`;
    const out = await rt.invoke('a', [`stat 3 ${fits}`, `stat 3 ${over}`, `symlink ${over} 3 l`, `open 3 ${over}`].join('\n'));
    expect(lines(out.output)).toEqual(['stat errno 0 type 4', 'stat errno 37 type 0', 'symlink errno 37', 'open errno 37']);
  });

  it('an iovec array longer than IOV_MAX (1024) is EINVAL, not a JavaScript array the size of guest memory', async () => {
    const w = fresh('iovs');
    const { rt } = await runtime({ workers: 1 });
    await rt.register('a', guestBytes('wasi_attack'), { wasi: { dirs: [{ host: w, guest: '/w' }] } });
    // 7 million empty iovecs took 3.4 s of one call before the cap (a JavaScript pair each).
    const out = await rt.invoke('a', 'iovs 1024\niovs 1025\niovs 7000000');
    expect(lines(out.output)).toEqual(['iovs errno 0', 'iovs errno 28', 'iovs errno 28']);
  });

  it('poll_oneoff with more than 4096 subscriptions is EINVAL, not an array the size of guest memory', async () => {
    const w = fresh('poll');
    const { rt } = await runtime({ workers: 1 });
    await rt.register('a', guestBytes('wasi_attack'), { wasi: { dirs: [{ host: w, guest: '/w' }] } });
    const out = await rt.invoke('a', 'poll 4096\npoll 4097\npoll 600000');
    expect(lines(out.output)).toEqual(['poll errno 0 events 4096', 'poll errno 28 events 0', 'poll errno 28 events 0']);
  });

  it('a grant inside a writable grant cannot be redirected outside by a link the guest puts on its host path', async () => {
    const w = fresh('nest');
    mkdirSync(join(w, 'a', 'b'), { recursive: true });
    writeFileSync(join(w, 'a', 'b', 'mine.txt'), 'mine\n');
    mkdirSync(join(outside, 'b'));
    writeFileSync(join(outside, 'b', 'secret.txt'), 'secret\n');
    const { rt, logs } = await runtime({ workers: 1 });
    await rt.register('a', guestBytes('wasi_attack'), {
      wasi: {
        dirs: [
          { host: w, guest: '/w', writable: true },
          { host: join(w, 'a', 'b'), guest: '/ro' },
        ],
      },
    });
    // The guest moves a/ away and puts a relative link to outside/ in its place: w/a/b is now outside/b.
    const out = await rt.invoke('a', 'rename 3 a 3 a2\nsymlink ../outside 3 a\nopen 4 secret.txt\nread 5');
    expect(lines(out.output).slice(0, 3)).toEqual(['rename errno 0', 'symlink errno 0', 'open errno 54']);
    expect(text(out.output)).not.toContain('secret');
    // A later call too (each call opens its grants afresh).
    const again = await rt.invoke('a', 'open 4 secret.txt\nread 5');
    expect(lines(again.output)[0]).toBe('open errno 54');
    expect(logs.some((l) => l.message.includes("the directory granted as '/ro'"))).toBe(true);
    // Put back, the grant works again.
    rmSync(join(w, 'a'));
    renameSync(join(w, 'a2'), join(w, 'a'));
    expect(lines((await rt.invoke('a', 'open 4 mine.txt\nread 5')).output)).toEqual(['open errno 0 fd 5', 'read errno 0 mine']);
  });
});
