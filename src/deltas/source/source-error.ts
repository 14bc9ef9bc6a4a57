/**
 * Every source error carries the (redacted) URI it was about as a property, so the layers above
 * can log or trace it without parsing messages; the caller adds the task name.
 */
import { boundText } from '../../core/bounded-text.js';
import { redactUri } from './uri.js';

export type SourceError = Error & { uri: string };

export function withUri<E extends Error>(error: E, uri: string): E & { uri: string } {
  return Object.assign(error, { uri: redactUri(uri) });
}

/** A FastifyError's code, or an undici / Node error code, or undefined. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** An underlying error's message, bounded: Node's file-system errors quote the (untrusted) path. */
export function errorMessage(error: unknown): string {
  return boundText(error instanceof Error ? error.message : String(error), 400);
}
