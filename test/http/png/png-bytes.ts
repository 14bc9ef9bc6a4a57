/** PNG files for tests, well-formed or hostile, built chunk by chunk. */
import { crc32, deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';

export function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

export interface RawPngOptions {
  readonly width: number;
  readonly height: number;
  readonly bitDepth?: number;
  readonly colorType?: number;
  readonly interlace?: 0 | 1;
  /** The uncompressed IDAT stream (filter bytes included); deflated here. */
  readonly raw: Buffer;
}

export function rawPng(options: RawPngOptions): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(options.width, 0);
  ihdr.writeUInt32BE(options.height, 4);
  ihdr[8] = options.bitDepth ?? 8;
  ihdr[9] = options.colorType ?? 0;
  ihdr[12] = options.interlace ?? 0;
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(options.raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** An RGBA PNG written by pngjs, pixel by pixel. */
export function png(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number, number],
  colorType?: 0 | 2 | 6,
): Buffer {
  const image = new PNG({ width, height, ...(colorType !== undefined && { colorType }) });
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) image.data.set(pixel(x, y), (y * width + x) * 4);
  return PNG.sync.write(image, colorType === undefined ? {} : { colorType, inputHasAlpha: true });
}

/** The two PNGs that used to kill the gateway (an unhandled 'error' event in pngjs). */
export const HOSTILE_PNGS = {
  zeroByZero: () => rawPng({ width: 0, height: 0, raw: Buffer.alloc(0) }),
  shortIdat: () => rawPng({ width: 28, height: 28, raw: Buffer.alloc(100) }),
} as const;
