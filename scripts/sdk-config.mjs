// The SDK pins and where the SDK folder lives: shared by the set-up script, the build and the runtime.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The three wheels of the SDK, pinned exactly. */
export const SDK_WHEELS = ['openvino==2026.3.0', 'openvino-genai==2026.3.0.0', 'openvino-tokenizers==2026.3.0.0'];

/** Bumped whenever the layout of sdk.json or the pins change: an older folder is repaired. */
export const SDK_STAMP = `multilora-sdk-1:${SDK_WHEELS.join(',')}`;

/** The SDK folder: $MULTILORA_SDK_DIR when set, else `.sdk/` in the package root. */
export function sdkDir() {
  const fromEnv = process.env.MULTILORA_SDK_DIR;
  return fromEnv ? path.resolve(fromEnv) : path.join(ROOT, '.sdk');
}

/** Reads sdk.json and returns it when every path it records exists, else null. */
export function readCompleteSdk(dir = sdkDir()) {
  const file = path.join(dir, 'sdk.json');
  if (!existsSync(file)) return null;
  let sdk;
  try {
    sdk = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  // A folder that was copied or moved still records the old paths: it is set up again where it is now.
  if (sdk.stamp !== SDK_STAMP || sdk.dir !== path.resolve(dir)) return null;
  const required = [
    sdk.python,
    sdk.openvinoInclude,
    sdk.openvinoCmakeDir,
    sdk.openvinoLib,
    sdk.genaiLib,
    sdk.tokenizersLib,
    sdk.tbbLib,
  ];
  return required.every((p) => typeof p === 'string' && existsSync(p)) ? sdk : null;
}
