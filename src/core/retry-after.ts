/** An error that says when to retry; the HTTP layer sends `retryAfterSeconds` as `Retry-After`. */
export type RetryableError<E extends Error = Error> = E & { retryAfterSeconds: number };

export function withRetryAfter<E extends Error>(error: E, retryAfterSeconds: number): RetryableError<E> {
  return Object.assign(error, { retryAfterSeconds });
}
