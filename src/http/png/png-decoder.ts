/**
 * PNG decoding off the event loop, bounded three ways, so that an upload can cost neither the
 * event loop nor unbounded memory:
 *
 * - pixels: the header's width × height must be ≤ `maxPixels` (checked before inflating);
 * - concurrency: at most `concurrency` decodes run at once, each in a worker thread of a piscina
 *   pool; at most `maxQueued` more wait, and beyond that a request gets 503 DS_ERR_OVERLOADED
 *   with a Retry-After derived from the measured decode time;
 * - time: a decode that takes longer than `timeoutMs` (counted from when a worker takes it, not
 *   from the queue) has its worker terminated (safe: the worker runs only JavaScript and zlib)
 *   and the request gets 400 DS_ERR_IMAGE_INVALID.
 *
 * Decoded memory at once is therefore ≤ concurrency × (maxPixels × 8 bytes of 16-bit RGBA +
 * the body), whatever the bytes inflate to.
 */
import { Piscina } from 'piscina';
import { DS_ERR_IMAGE_INVALID, DS_ERR_OVERLOADED } from '../../core/errors.js';
import { withRetryAfter } from '../../core/retry-after.js';
import type { PngDecodeJob, PngDecodeResult } from './png-decode-job.js';

export interface PngDecoderOptions {
  /** Largest width × height a PNG may declare. */
  readonly maxPixels: number;
  /** Decodes that run at once (one worker thread each). */
  readonly concurrency: number;
  /** Decodes that may wait for a worker; more get 503. */
  readonly maxQueued: number;
  /** A decode running longer than this is stopped and refused. */
  readonly timeoutMs: number;
}

const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(
  RUNNING_FROM_SOURCE ? './png-decode-worker-from-source.mjs' : './png-decode-worker.js',
  import.meta.url,
);
/** Bound of the Retry-After an overloaded decoder answers. */
const MAX_RETRY_AFTER_S = 5;
/** A job that starts a worker and returns at once (an empty body is refused before any work). */
const WARM_UP_JOB: PngDecodeJob = { bytes: new Uint8Array(0), width: 1, height: 1, maxPixels: 1 };

export class PngDecoder {
  private pool: Piscina<PngDecodeJob, PngDecodeResult> | null = null;
  /** Resolves once a worker thread has started and loaded its code. */
  private warm: Promise<unknown> | null = null;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private meanDecodeMs = 50;

  constructor(private readonly options: PngDecoderOptions) {}

  /** PNG bytes → grey levels 0..255 at width × height; rejects with a 400 or a 503. */
  async decode(bytes: Uint8Array, width: number, height: number): Promise<Float32Array> {
    if (this.running >= this.options.concurrency && this.waiting.length >= this.options.maxQueued)
      throw this.overloaded();
    await this.takeSlot();
    try {
      // The deadline is for decoding: starting a worker (and loading its code) happens before it.
      await this.warmPool();
      const started = performance.now();
      let result: PngDecodeResult;
      try {
        result = await this.pool!.run(
          { bytes, width, height, maxPixels: this.options.maxPixels },
          { signal: AbortSignal.timeout(this.options.timeoutMs) },
        );
      } catch (error) {
        const e = error as Error;
        if (e.name === 'AbortError' || e.name === 'TimeoutError') {
          throw new DS_ERR_IMAGE_INVALID(`decoding the PNG took longer than ${this.options.timeoutMs} ms`);
        }
        // The worker died (e.g. its memory limit): the image, not the server, is at fault.
        throw new DS_ERR_IMAGE_INVALID(`the PNG could not be decoded within the decoder's limits (${e.message})`);
      }
      this.meanDecodeMs += 0.2 * (performance.now() - started - this.meanDecodeMs);
      if (!result.ok) throw new DS_ERR_IMAGE_INVALID(result.reason);
      return result.grey;
    } finally {
      this.releaseSlot();
    }
  }

  async close(): Promise<void> {
    await this.pool?.close({ force: true });
  }

  /**
   * The pool starts with the first decode, not with the server (most servers never see a PNG),
   * and then keeps its threads: an idle-then-cold worker would spend the next decode's deadline
   * starting up.
   */
  private warmPool(): Promise<unknown> {
    if (this.pool === null) {
      this.pool = new Piscina({
        filename: WORKER_URL.href,
        minThreads: this.options.concurrency,
        maxThreads: this.options.concurrency,
        // Jobs are handed over only when a slot is free (takeSlot): piscina never queues.
        maxQueue: this.options.concurrency,
        // Decoded pixels live in Buffers (outside the heap); this bounds the rest of a worker.
        resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
      });
      // piscina emits 'error' for a worker that dies between jobs: without a listener that event
      // would take the whole gateway down. The pool replaces the worker itself.
      this.pool.on('error', (error: Error) =>
        process.emitWarning(`PNG decode worker failed outside a job: ${error.message}`),
      );
    }
    this.warm ??= this.pool.run(WARM_UP_JOB).catch(() => undefined);
    return this.warm;
  }

  private async takeSlot(): Promise<void> {
    if (this.running < this.options.concurrency) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot straight to the next waiting decode, if any. */
  private releaseSlot(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }

  private overloaded(): Error {
    const waitMs = ((this.waiting.length + this.options.concurrency) * this.meanDecodeMs) / this.options.concurrency;
    const retryAfterSeconds = Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(waitMs / 1000)));
    const error = new DS_ERR_OVERLOADED(
      `${this.waiting.length} PNG decodes are already waiting for the ${this.options.concurrency} decoders`,
      retryAfterSeconds,
    );
    return withRetryAfter(error, retryAfterSeconds);
  }
}
