// PNG in and out, through pngjs.
import { PNG } from 'pngjs';

import type { Image } from './options';
import { MultiloraError } from './errors';

/** Encodes an RGB image as PNG bytes. */
export function encodePng(image: Pick<Image, 'width' | 'height' | 'data'>): Buffer {
  const { width, height, data } = image;
  if (data.length !== width * height * 3) {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Expected ${width * height * 3} RGB bytes for a ${width}x${height} image but received ${data.length}`,
    );
  }
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  data.copy(png.data);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * The size that PNG bytes claim (their IHDR chunk), read without inflating anything: a PNG of a few dozen bytes can
 * claim 2^31-1 x 2^31-1 pixels, and decoding it would take gigabytes, minutes or (in zlib) the process.
 */
export function pngSize(bytes: Buffer): { width: number; height: number } {
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(SIGNATURE) || bytes.toString('latin1', 12, 16) !== 'IHDR') {
    throw new MultiloraError(
      'ERR_INVALID_ARGUMENT',
      `Not a readable PNG: ${bytes.length} bytes without the PNG signature and IHDR chunk that a PNG starts with`,
    );
  }
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** Decodes PNG bytes into an RGB image (alpha dropped). */
export function decodePng(bytes: Buffer): { width: number; height: number; channels: 3; data: Buffer } {
  // This allocates what the PNG claims: callers that take PNGs from users check pngSize() first.
  let png: PNG;
  try {
    png = PNG.sync.read(bytes);
  } catch (err) {
    throw new MultiloraError('ERR_INVALID_ARGUMENT', `Not a readable PNG: ${(err as Error).message}`, { cause: err });
  }
  return { width: png.width, height: png.height, channels: 3, data: toRgb(png.data, png.width * png.height, 4) };
}

/** RGB bytes of `pixels` pixels of 1 (grey), 3 (RGB, returned as is) or 4 (RGBA: alpha dropped) channels. */
export function toRgb(data: Buffer, pixels: number, channels: 1 | 3 | 4): Buffer {
  if (channels === 3) return data;
  const rgb = Buffer.allocUnsafe(pixels * 3);
  for (let i = 0; i < pixels; i += 1) {
    for (let c = 0; c < 3; c += 1) rgb[i * 3 + c] = data[channels === 1 ? i : i * 4 + c]!;
  }
  return rgb;
}
