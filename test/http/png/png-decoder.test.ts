import { test } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PngDecoder } from '../../../src/http/png/png-decoder.js';
import { HOSTILE_PNGS, png, rawPng } from './png-bytes.js';
import { hasCode } from '../../helpers/errors.js';

test('the pool decodes in worker threads; hostile PNGs are 400s, not crashes', async (t) => {
  const decoder = new PngDecoder({ maxPixels: 1024 * 1024, concurrency: 2, maxQueued: 8, timeoutMs: 10_000 });
  t.after(() => decoder.close());
  const grey = await decoder.decode(
    png(2, 2, () => [255, 255, 255, 255]),
    2,
    2,
  );
  assert.deepEqual([...grey].map(Math.round), [255, 255, 255, 255]);
  await assert.rejects(decoder.decode(HOSTILE_PNGS.zeroByZero(), 28, 28), hasCode('DS_ERR_IMAGE_INVALID', /no pixels/));
  await assert.rejects(decoder.decode(HOSTILE_PNGS.shortIdat(), 28, 28), hasCode('DS_ERR_IMAGE_INVALID', /short of/));
  // Still serving after the refusals.
  assert.equal(
    (
      await decoder.decode(
        png(1, 1, () => [9, 9, 9, 255]),
        28,
        28,
      )
    ).length,
    784,
  );
});

test('beyond the queue bound a decode is refused at once with 503 and a bounded Retry-After', async (t) => {
  const decoder = new PngDecoder({ maxPixels: 4096 * 4096, concurrency: 1, maxQueued: 1, timeoutMs: 60_000 });
  t.after(() => decoder.close());
  const big = rawPng({ width: 2048, height: 2048, raw: Buffer.alloc(2048 * 2049) });
  const running = [decoder.decode(big, 28, 28), decoder.decode(big, 28, 28)];
  const refused = await decoder.decode(big, 28, 28).then(
    () => null,
    (e: Error & { code?: string; retryAfterSeconds?: number }) => e,
  );
  assert.ok(refused, 'the third decode is refused');
  assert.equal(refused.code, 'DS_ERR_OVERLOADED');
  assert.ok(
    refused.retryAfterSeconds! >= 1 && refused.retryAfterSeconds! <= 5,
    `Retry-After ${refused.retryAfterSeconds}`,
  );
  await Promise.all(running);
});

test('a decode past its deadline is stopped and refused as a 400', async (t) => {
  const decoder = new PngDecoder({ maxPixels: 4096 * 4096, concurrency: 1, maxQueued: 4, timeoutMs: 1 });
  t.after(() => decoder.close());
  const big = rawPng({ width: 4096, height: 4096, raw: Buffer.alloc(4096 * 4097) });
  await assert.rejects(decoder.decode(big, 28, 28), hasCode('DS_ERR_IMAGE_INVALID', /longer than 1 ms/));
});

test('the event loop stays free while large PNGs decode', async (t) => {
  const decoder = new PngDecoder({ maxPixels: 4096 * 4096, concurrency: 2, maxQueued: 8, timeoutMs: 60_000 });
  t.after(() => decoder.close());
  const big = rawPng({
    width: 2048,
    height: 2048,
    bitDepth: 16,
    colorType: 6,
    raw: Buffer.alloc(2048 * (1 + 2048 * 8)),
  });
  await decoder.decode(
    png(1, 1, () => [0, 0, 0, 255]),
    28,
    28,
  ); // start a worker first
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const started = performance.now();
  await Promise.all([decoder.decode(big, 28, 28), decoder.decode(big, 28, 28)]);
  const elapsedMs = performance.now() - started;
  delay.disable();
  const maxStallMs = delay.max / 1e6;
  // Not a timing assertion of speed: the decodes took elapsedMs in total, and the loop must not
  // have been held for (nearly) all of it, as it was when decoding ran on the main thread.
  assert.ok(
    maxStallMs < Math.max(100, elapsedMs / 2),
    `event loop stalled ${maxStallMs.toFixed(0)} ms of ${elapsedMs.toFixed(0)} ms`,
  );
});

test("the pool's 'error' events (a worker dying between jobs) are handled, not fatal", async (t) => {
  const decoder = new PngDecoder({ maxPixels: 1024, concurrency: 1, maxQueued: 1, timeoutMs: 10_000 });
  t.after(() => decoder.close());
  const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
  await decoder.decode(
    png(1, 1, () => [9, 9, 9, 255]),
    2,
    2,
  ); // starts the pool
  (decoder as unknown as { pool: NodeJS.EventEmitter }).pool.emit('error', new Error('worker died'));
  assert.match((await warned).message, /worker died/);
  assert.equal(
    (
      await decoder.decode(
        png(1, 1, () => [9, 9, 9, 255]),
        2,
        2,
      )
    ).length,
    4,
  );
});
