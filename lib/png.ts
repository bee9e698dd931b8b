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

/** Decodes PNG bytes into an RGB image (alpha dropped). */
export function decodePng(bytes: Buffer): { width: number; height: number; channels: 3; data: Buffer } {
  let png: PNG;
  try {
    png = PNG.sync.read(bytes);
  } catch (err) {
    throw new MultiloraError('ERR_INVALID_ARGUMENT', `Not a readable PNG: ${(err as Error).message}`, { cause: err });
  }
  const rgb = Buffer.alloc(png.width * png.height * 3);
  for (let i = 0, j = 0; i < png.data.length; i += 4, j += 3) {
    rgb[j] = png.data[i]!;
    rgb[j + 1] = png.data[i + 1]!;
    rgb[j + 2] = png.data[i + 2]!;
  }
  return { width: png.width, height: png.height, channels: 3, data: rgb };
}
