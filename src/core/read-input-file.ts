/** Reading a file a user named (CLI argument, config path): any failure is DS_ERR_FILE_READ naming it. */
import { readFile } from 'node:fs/promises';
import { DS_ERR_FILE_READ } from './errors.js';

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a folder, not a file',
};

export async function readInputFile(path: string, what = 'file'): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DS_ERR_FILE_READ(`${what} ${path}`, (code && REASONS[code]) ?? (error as Error).message);
  }
}
