/** Reading a file a user named (CLI argument, config path): any failure is DS_ERR_FILE_READ naming it. */
import { DS_ERR_FILE_READ } from './errors.js';
import { readRegularFile } from './regular-file.js';

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a folder, not a file',
};

export async function readInputFile(path: string, what = 'file'): Promise<Buffer> {
  try {
    return await readRegularFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DS_ERR_FILE_READ(`${what} ${path}`, (code && REASONS[code]) ?? (error as Error).message);
  }
}
