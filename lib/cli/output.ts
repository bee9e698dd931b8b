// Writing images: PNG through the package's encoder, JPEG through jpeg-js; to a file or to stdout.
import { writeFile } from 'node:fs/promises';

import { encode as encodeJpeg } from 'jpeg-js';

import type { Image } from '../core/options';
import { encodePng } from '../core/png';
import type { ImageFormat } from './args';

/** Encodes an RGB image as PNG, or as JPEG at `quality` (1 to 100). */
export function encodeImage(
  image: Pick<Image, 'width' | 'height' | 'data'>,
  format: ImageFormat,
  quality = 90,
): Buffer {
  if (format === 'png') return encodePng(image);
  const { width, height, data } = image;
  const rgba = Buffer.alloc(width * height * 4, 255);
  for (let i = 0, j = 0; i < data.length; i += 3, j += 4) {
    rgba[j] = data[i]!;
    rgba[j + 1] = data[i + 1]!;
    rgba[j + 2] = data[i + 2]!;
  }
  return encodeJpeg({ data: rgba, width, height }, quality).data;
}

/** Writes bytes to a file, or to stdout for `-` (resolved once the bytes are handed to the OS). */
export async function writeOutput(file: string, bytes: Buffer): Promise<void> {
  if (file !== '-') {
    await writeFile(file, bytes);
    return;
  }
  await new Promise<void>((resolve, reject) => {
    process.stdout.write(bytes, (err) => (err ? reject(err) : resolve()));
  });
}
