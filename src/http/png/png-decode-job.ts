/**
 * One PNG decode, as a pure function: PNG bytes → grey levels 0..255 at the model's size, or
 * the reason the bytes are refused. It runs inside the decode workers (png-decode-worker.ts) and
 * never throws for bad input: errors do not survive the trip back from a worker as the
 * project's error classes, so the reason travels as a string and the main thread wraps it.
 *
 * Conversion: decoded to 8-bit RGBA by pngjs, composited over black (the zoo's images are light
 * objects on a black background, so transparency reads as background), grey by the ITU-R BT.601
 * luma weights, resized by bilinear interpolation with pixel centres aligned.
 *
 * Bounds, checked before pngjs runs: the declared width × height (IHDR) must be at most
 * `maxPixels`, so decoded memory is bounded by the request, not by what the bytes inflate to;
 * and the image data must inflate to exactly what the header implies (inflated here once with
 * a cap: pngjs reads past data that is short, and inflates interlaced data without a bound).
 */
import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { resizeBilinear } from './resize.js';

export interface PngDecodeJob {
  readonly bytes: Uint8Array;
  /** Target size (the model's input). */
  readonly width: number;
  readonly height: number;
  readonly maxPixels: number;
}

export type PngDecodeResult =
  { readonly ok: true; readonly grey: Float32Array } | { readonly ok: false; readonly reason: string };

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Samples per pixel, by PNG colour type (grey, -, RGB, palette, grey+alpha, -, RGBA). */
const SAMPLES_PER_PIXEL: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7_PASSES = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

interface Header {
  readonly width: number;
  readonly height: number;
  readonly bitDepth: number;
  readonly colorType: number;
  readonly interlaced: boolean;
}

export function decodePngJob(job: PngDecodeJob): PngDecodeResult {
  const buffer = Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.byteLength);
  const header = readHeader(buffer);
  if (typeof header === 'string') return { ok: false, reason: header };
  if (header.width === 0 || header.height === 0)
    return { ok: false, reason: `the PNG is ${header.width}×${header.height}: it has no pixels` };
  if (header.width * header.height > job.maxPixels) {
    return {
      ok: false,
      reason: `the PNG is ${header.width}×${header.height} = ${header.width * header.height} pixels, more than the limit of ${job.maxPixels}`,
    };
  }
  const refused = checkDataSize(buffer, header);
  if (refused) return { ok: false, reason: refused };
  let png: { width: number; height: number; data: Buffer };
  try {
    png = PNG.sync.read(buffer);
  } catch (error) {
    return { ok: false, reason: `the PNG cannot be decoded: ${(error as Error).message}` };
  }
  const grey = new Float32Array(png.width * png.height);
  const rgba = png.data;
  if (rgba.length < grey.length * 4)
    return { ok: false, reason: 'the PNG decoded to fewer pixels than its header declares' };
  for (let i = 0; i < grey.length; i++) {
    const alpha = rgba[i * 4 + 3]! / 255;
    grey[i] = (0.299 * rgba[i * 4]! + 0.587 * rgba[i * 4 + 1]! + 0.114 * rgba[i * 4 + 2]!) * alpha;
  }
  return { ok: true, grey: resizeBilinear(grey, png.width, png.height, job.width, job.height) };
}

/** The IHDR fields, or why the bytes are not a PNG this decoder takes. */
function readHeader(buffer: Buffer): Header | string {
  if (buffer.length < 33 || !buffer.subarray(0, 8).equals(PNG_SIGNATURE))
    return 'the body is not a PNG file (bad signature or shorter than a PNG header)';
  if (buffer.readUInt32BE(8) !== 13 || buffer.toString('latin1', 12, 16) !== 'IHDR')
    return 'the PNG does not start with an IHDR chunk';
  const colorType = buffer[25]!;
  const bitDepth = buffer[24]!;
  if (SAMPLES_PER_PIXEL[colorType] === undefined)
    return `the PNG has colour type ${colorType}, which PNG does not define`;
  if (![1, 2, 4, 8, 16].includes(bitDepth)) return `the PNG has bit depth ${bitDepth}, which PNG does not define`;
  return {
    width: buffer.readUInt32BE(16),
    height: buffer.readUInt32BE(20),
    bitDepth,
    colorType,
    interlaced: buffer[28] === 1,
  };
}

/** Bytes of the filtered image data (one filter byte per row) the header implies. */
function expectedDataBytes(header: Header): number {
  const bitsPerPixel = SAMPLES_PER_PIXEL[header.colorType]! * header.bitDepth;
  const rowBytes = (pixels: number) => 1 + Math.ceil((pixels * bitsPerPixel) / 8);
  if (!header.interlaced) return header.height * rowBytes(header.width);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7_PASSES) {
    const width = header.width > x0 ? Math.ceil((header.width - x0) / dx) : 0;
    const height = header.height > y0 ? Math.ceil((header.height - y0) / dy) : 0;
    if (width > 0 && height > 0) total += height * rowBytes(width);
  }
  return total;
}

/**
 * Inflates the IDAT stream once with a cap just above what the header implies: data that
 * inflates short (pngjs would read past it) or far past it (pngjs inflates interlaced data
 * without a bound) is refused before pngjs sees it.
 */
function checkDataSize(buffer: Buffer, header: Header): string | null {
  const expected = expectedDataBytes(header);
  const chunks: Buffer[] = [];
  for (let at = 8; at + 12 <= buffer.length;) {
    const length = buffer.readUInt32BE(at);
    if (at + 12 + length > buffer.length) break; // pngjs reports the truncation itself
    if (buffer.toString('latin1', at + 4, at + 8) === 'IDAT') chunks.push(buffer.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  let inflated: Buffer;
  try {
    inflated = inflateSync(Buffer.concat(chunks), { maxOutputLength: expected + 1 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
      return `the PNG's image data inflates to more than the ${expected} bytes a ${header.width}×${header.height} image holds`;
    }
    return null; // corrupt or truncated data: pngjs names the problem
  }
  if (inflated.length < expected)
    return `the PNG's image data inflates to ${inflated.length} bytes, short of the ${expected} a ${header.width}×${header.height} image holds`;
  return null;
}
