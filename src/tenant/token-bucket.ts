/**
 * A token bucket (requests/s + burst): the bucket holds up to `burst` tokens, refills at
 * `ratePerSecond`, and each request takes one. When empty, `retryAfterSeconds` is how long until
 * one token is back (rounded up to whole seconds, as `Retry-After` wants). Time is passed in, so
 * tests need no clock.
 */
export type TakeResult = { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    nowMs: number,
  ) {
    this.tokens = burst;
    this.updatedAt = nowMs;
  }

  take(nowMs: number): TakeResult {
    const elapsed = Math.max(0, nowMs - this.updatedAt) / 1000;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.ratePerSecond);
    this.updatedAt = nowMs;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - this.tokens) / this.ratePerSecond)) };
  }
}
