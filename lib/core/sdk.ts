// Finds the OpenVINO GenAI runtime at run time. The addon finds its libraries by RPATH: the SDK's folders for a build
// from source, its own folder for a prebuild (prebuilds/linux-x64/, which carries them). What is left is the
// tokenizers library, which GenAI loads by path from OPENVINO_TOKENIZERS_PATH_GENAI.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The package root (dist/ and lib/ sit one level below it). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

export interface SdkPaths {
  dir: string;
  python: string;
  genaiLib: string;
  tokenizersLib: string;
}

/** The SDK folder in use: $MULTILORA_SDK_DIR, else `.sdk/` in the package root. */
export function sdkDir(): string {
  const fromEnv = process.env.MULTILORA_SDK_DIR;
  return fromEnv ? path.resolve(fromEnv) : path.join(PACKAGE_ROOT, '.sdk');
}

/** sdk.json of the SDK in use, or null when there is none. */
function readSdk(): SdkPaths | null {
  const file = path.join(sdkDir(), 'sdk.json');
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SdkPaths;
  } catch {
    return null;
  }
}

/** The tokenizers library a prebuilt addon carries beside itself (see scripts/prebuild.mjs). */
const BUNDLED_TOKENIZERS = 'libopenvino_tokenizers.so';

/**
 * Points GenAI at the tokenizers library unless the user already did: the one beside the addon when the addon
 * carries its runtime (a prebuild), else the SDK's. Returns the path in use, if any.
 */
export function configureTokenizers(addonPath: string): string | undefined {
  const current = process.env.OPENVINO_TOKENIZERS_PATH_GENAI;
  if (current) return current;
  const bundled = path.join(path.dirname(addonPath), BUNDLED_TOKENIZERS);
  const sdk = readSdk();
  const found = existsSync(bundled) ? bundled : sdk && existsSync(sdk.tokenizersLib) ? sdk.tokenizersLib : undefined;
  if (found) process.env.OPENVINO_TOKENIZERS_PATH_GENAI = found;
  return found;
}
