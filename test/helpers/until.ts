/**
 * Waits, bounded, for something a test cannot await directly (a worker restart, a request
 * reaching a gate). Fails with `what` after `timeoutMs` instead of hanging the suite.
 */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000, pollMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
