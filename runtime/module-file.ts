/**
 * Main thread. Reads a module that `register` was given as a file path: only a regular file,
 * and never more than `maxModuleBytes` of it (a device such as /dev/zero would read without
 * end, a FIFO would block the read until a writer came).
 */
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { ErrorCode, ModuleError } from './errors.js';

export function moduleTooLarge(name: string, bytes: number, maxModuleBytes: number): ModuleError {
  return new ModuleError(
    ErrorCode.MODULE_TOO_LARGE,
    `function '${name}' is ${bytes} bytes, above maxModuleBytes=${maxModuleBytes}; raise it in createRuntime()`,
    { function: name, bytes, maxModuleBytes },
  );
}

function unreadable(name: string, path: string, why: string): ModuleError {
  return new ModuleError(ErrorCode.INVALID_MODULE, `function '${name}': cannot read ${path}: ${why}`, { function: name, path });
}

function notAFile(name: string, path: string): ModuleError {
  return new ModuleError(
    ErrorCode.INVALID_MODULE,
    `function '${name}': ${path} is not a regular file; pass the path of a .wasm file, or its bytes`,
    { function: name, path, reason: 'not a regular file' },
  );
}

export async function readModuleFile(name: string, path: string, maxModuleBytes: number): Promise<Uint8Array> {
  let file: Awaited<ReturnType<typeof open>>;
  try {
    // Checked before opening: opening some devices does something by itself.
    if (!(await stat(path)).isFile()) throw notAFile(name, path);
    // Non-blocking, and checked again on the open file, in case the path was swapped meanwhile
    // for a FIFO (whose open would otherwise wait for a writer).
    file = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw err instanceof ModuleError ? err : unreadable(name, path, (err as Error).message);
  }
  try {
    const info = await file.stat();
    if (!info.isFile()) throw notAFile(name, path);
    if (info.size > maxModuleBytes) throw moduleTooLarge(name, info.size, maxModuleBytes);
    // One byte more than measured, to see a file that grew meanwhile.
    const buffer = new Uint8Array(info.size + 1);
    let length = 0;
    while (length < buffer.byteLength) {
      const { bytesRead } = await file.read(buffer, length, buffer.byteLength - length, null);
      if (bytesRead === 0) return buffer.subarray(0, length);
      length += bytesRead;
    }
    throw unreadable(name, path, `it grew while being read (from ${info.size} bytes); register it again once it is written`);
  } catch (err) {
    throw err instanceof ModuleError ? err : unreadable(name, path, (err as Error).message);
  } finally {
    await file.close();
  }
}
