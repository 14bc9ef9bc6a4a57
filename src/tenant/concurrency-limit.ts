/** At most `limit` holders at once; `tryAcquire` never waits (the caller answers 429 instead). */
export class ConcurrencyLimit {
  private held = 0;

  constructor(readonly limit: number) {}

  get inFlight(): number {
    return this.held;
  }

  /** A release function (idempotent), or null when the limit is reached. */
  tryAcquire(): (() => void) | null {
    if (this.held >= this.limit) return null;
    this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
    };
  }
}
