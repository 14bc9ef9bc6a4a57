/** The one sha256 of a string (UTF-8): API keys are stored and compared as these digests. */
import { createHash } from 'node:crypto';

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** {@link sha256} as lowercase hex, the form configuration files hold. */
export function sha256Hex(text: string): string {
  return sha256(text).toString('hex');
}
