/**
 * PNG decoding off the event loop, bounded three ways, so that an upload can cost neither the
 * event loop nor unbounded memory:
 *
 * - pixels: the header's width × height must be ≤ `maxPixels` (checked before inflating);
 * - concurrency: at most `concurrency` decodes run at once, each in a worker thread of a piscina
 *   pool; at most `maxQueued` more wait, and beyond that a request gets 503 DS_ERR_OVERLOADED
 *   with a Retry-After derived from the measured decode time;
 * - time: a decode that takes longer than `timeoutMs` has its worker terminated (safe: the
 *   worker runs only JavaScript and zlib) and the request gets 400 DS_ERR_IMAGE_INVALID.
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
const WORKER_URL = new URL(RUNNING_FROM_SOURCE ? './png-decode-worker-from-source.mjs' : './png-decode-worker.js', import.meta.url);
/** Bound of the Retry-After an overloaded decoder answers. */
const MAX_RETRY_AFTER_S = 5;

export class PngDecoder {
  private readonly pool: Piscina<PngDecodeJob, PngDecodeResult>;
  private meanDecodeMs = 50;

  constructor(private readonly options: PngDecoderOptions) {
    this.pool = new Piscina({
      filename: WORKER_URL.href,
      minThreads: 0,
      maxThreads: options.concurrency,
      maxQueue: options.maxQueued,
      idleTimeout: 30_000,
      // Decoded pixels live in Buffers (outside the heap); this bounds the rest of a worker.
      resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
    });
    // piscina emits 'error' for a worker that dies between jobs: without a listener that event
    // would take the whole gateway down. The pool replaces the worker itself.
    this.pool.on('error', (error: Error) => process.emitWarning(`PNG decode worker failed outside a job: ${error.message}`));
  }

  /** PNG bytes → grey levels 0..255 at width × height; rejects with a 400 or a 503. */
  async decode(bytes: Uint8Array, width: number, height: number): Promise<Float32Array> {
    if (this.pool.queueSize >= this.options.maxQueued) throw this.overloaded();
    const started = performance.now();
    let result: PngDecodeResult;
    try {
      result = await this.pool.run({ bytes, width, height, maxPixels: this.options.maxPixels }, { signal: AbortSignal.timeout(this.options.timeoutMs) });
    } catch (error) {
      const e = error as Error;
      if (e.name === 'AbortError' || e.name === 'TimeoutError') {
        throw new DS_ERR_IMAGE_INVALID(`decoding the PNG took longer than ${this.options.timeoutMs} ms`);
      }
      if (e.message === 'Task queue is at limit') throw this.overloaded();
      // The worker died (e.g. its memory limit): the image, not the server, is at fault.
      throw new DS_ERR_IMAGE_INVALID(`the PNG could not be decoded within the decoder's limits (${e.message})`);
    }
    this.meanDecodeMs += 0.2 * (performance.now() - started - this.meanDecodeMs);
    if (!result.ok) throw new DS_ERR_IMAGE_INVALID(result.reason);
    return result.grey;
  }

  close(): Promise<void> {
    return this.pool.close({ force: true });
  }

  private overloaded(): Error {
    const waitMs = ((this.pool.queueSize + this.options.concurrency) * this.meanDecodeMs) / this.options.concurrency;
    const retryAfterSeconds = Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(waitMs / 1000)));
    const error = new DS_ERR_OVERLOADED(`${this.pool.queueSize} PNG decodes are already waiting for the ${this.options.concurrency} decoders`, retryAfterSeconds);
    return withRetryAfter(error, retryAfterSeconds);
  }
}
