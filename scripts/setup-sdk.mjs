#!/usr/bin/env node
// Makes the project-local OpenVINO GenAI SDK: a Python venv holding the three pinned wheels, and an sdk.json that
// records the paths that the native build and the runtime need. A complete folder is reused; an incomplete one is
// repaired. Set MULTILORA_SDK_DIR to use (or make) an SDK folder elsewhere, MULTILORA_PYTHON to pick the interpreter.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SDK_STAMP, SDK_WHEELS, readCompleteSdk, sdkDir } from './sdk-config.mjs';

class SetupError extends Error {}

function run(cmd, args, { capture = false } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: capture ? 'pipe' : ['ignore', 'pipe', 'pipe'] });
  return { status: r.error ? null : r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

function findPython() {
  const candidates = process.env.MULTILORA_PYTHON ? [process.env.MULTILORA_PYTHON] : ['python3', 'python'];
  for (const cmd of candidates) {
    const r = run(cmd, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { capture: true });
    if (r.status !== 0) continue;
    const [major, minor] = r.stdout.trim().split('.').map(Number);
    if (major === 3 && minor >= 10) return cmd;
  }
  throw new SetupError(
    'python3 (3.10 or newer) was not found: install it (e.g. `apt-get install python3 python3-venv`) ' +
      'or set MULTILORA_PYTHON to its path, then run `npm install` again',
  );
}

function venvPython(dir) {
  return path.join(dir, 'venv', 'bin', 'python');
}

function ensureVenv(dir) {
  const py = venvPython(dir);
  if (existsSync(py) && run(py, ['-m', 'pip', '--version']).status === 0) return py;
  const python = findPython();
  rmSync(path.join(dir, 'venv'), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const made = run(python, ['-m', 'venv', path.join(dir, 'venv')]);
  if (made.status !== 0 || !existsSync(py)) {
    throw new SetupError(
      `\`${python} -m venv\` failed (${lastLine(made.stderr)}): install the venv module ` +
        '(e.g. `apt-get install python3-venv`), then run `npm install` again',
    );
  }
  if (run(py, ['-m', 'pip', '--version']).status !== 0) {
    throw new SetupError(
      'pip is missing from the new venv: install pip for your python3 (e.g. `apt-get install python3-pip`), ' +
        'then run `npm install` again',
    );
  }
  return py;
}

function lastLine(text) {
  const lines = text.trim().split('\n').filter(Boolean);
  return lines.length ? lines[lines.length - 1].trim() : 'no output';
}

function pipInstall(py, args) {
  const r = run(py, ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', ...args]);
  if (r.status === 0) return;
  const text = `${r.stdout}\n${r.stderr}`;
  const unreachable =
    /No matching distribution|Could not find a version|Max retries|ConnectionError|NewConnectionError|Temporary failure in name resolution|timed out|Network is unreachable|Connection refused/i;
  if (unreachable.test(text)) {
    throw new SetupError(
      `pip could not fetch ${SDK_WHEELS.join(', ')} from the package registry (${lastLine(r.stderr)}): ` +
        'check the network or your pip index settings (PIP_INDEX_URL), or set MULTILORA_SDK_DIR to an SDK folder you already have',
    );
  }
  throw new SetupError(`pip failed to install the OpenVINO GenAI SDK: ${lastLine(r.stderr || r.stdout)}`);
}

function findOne(dir, pattern) {
  if (!existsSync(dir)) return null;
  const hit = readdirSync(dir)
    .filter((f) => pattern.test(f))
    .sort()[0];
  return hit ? path.join(dir, hit) : null;
}

/** Every path the build and the runtime need, with the wheel that provides it. */
function locate(py) {
  const r = run(py, ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], { capture: true });
  if (r.status !== 0) throw new SetupError(`the SDK venv's python does not run: ${lastLine(r.stderr)}`);
  const site = r.stdout.trim();
  const ovLibs = path.join(site, 'openvino', 'libs');
  return {
    site,
    paths: {
      openvinoInclude: ['openvino', path.join(site, 'openvino', 'include')],
      openvinoCmakeDir: ['openvino', path.join(site, 'openvino', 'cmake')],
      openvinoLib: ['openvino', findOne(ovLibs, /^libopenvino\.so\.\d+$/)],
      tbbLib: ['openvino', findOne(ovLibs, /^libtbb\.so\.\d+$/)],
      genaiLib: ['openvino-genai', findOne(path.join(site, 'openvino_genai'), /^libopenvino_genai\.so\.\d+$/)],
      tokenizersLib: [
        'openvino-tokenizers',
        findOne(path.join(site, 'openvino_tokenizers', 'lib'), /^libopenvino_tokenizers\.so$/),
      ],
    },
  };
}

function missingWheels(found) {
  const wheels = new Set();
  for (const [wheel, p] of Object.values(found.paths)) if (!p || !existsSync(p)) wheels.add(wheel);
  return SDK_WHEELS.filter((w) => wheels.has(w.split('==')[0]));
}

export function setupSdk({ quiet = false } = {}) {
  const dir = sdkDir();
  const ready = readCompleteSdk(dir);
  if (ready) {
    if (!quiet) console.log(`multilora: OpenVINO GenAI SDK ready in ${dir}`);
    return ready;
  }
  if (!quiet) console.log(`multilora: setting up the OpenVINO GenAI SDK in ${dir} (${SDK_WHEELS.join(', ')})`);
  const py = ensureVenv(dir);
  pipInstall(py, SDK_WHEELS);
  let found = locate(py);
  const broken = missingWheels(found);
  if (broken.length) {
    // pip trusts its own records: files deleted from an installed wheel come back only with a forced reinstall.
    if (!quiet) console.log(`multilora: repairing ${broken.join(', ')}`);
    pipInstall(py, ['--force-reinstall', '--no-deps', ...broken]);
    found = locate(py);
    const still = missingWheels(found);
    if (still.length)
      throw new SetupError(`the SDK in ${dir} is still incomplete after a reinstall of ${still.join(', ')}`);
  }
  const sdk = { stamp: SDK_STAMP, dir, python: py, sitePackages: found.site };
  for (const [key, [, p]] of Object.entries(found.paths)) sdk[key] = p;
  sdk.openvinoLibDir = path.dirname(sdk.openvinoLib);
  sdk.genaiLibDir = path.dirname(sdk.genaiLib);
  const tmp = path.join(dir, `sdk.json.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(sdk, null, 2)}\n`);
  renameSync(tmp, path.join(dir, 'sdk.json'));
  if (!quiet) console.log(`multilora: OpenVINO GenAI SDK ready in ${dir}`);
  return sdk;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    setupSdk();
  } catch (err) {
    if (!(err instanceof SetupError)) throw err;
    console.error(`multilora: ${err.message}`);
    process.exit(1);
  }
}
