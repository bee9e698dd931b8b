// Prebuilt binaries: `npm run prebuild`, `npm pack`, then `npm install <tarball>` into a new app outside the repo,
// with no compiler, cmake or Python on PATH, and an image generated there by the prebuilt addon and the runtime it
// carries (README.md, "Prebuilt binaries"). The prebuild (~160 MB) and the pack are made in a copy of the checkout
// under the temporary folder, which goes at the end: the checkout is left as it was.
'use strict';
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { ROOT, useTempDir } = require('./helpers/fixtures');

const PLATFORM = `${process.platform}-${process.arch}`;

function run(cmd, args, options) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.error) throw r.error;
  return r;
}

function which(cmd) {
  const r = run('sh', ['-c', `command -v ${cmd}`]);
  return r.status === 0 ? realpathSync(r.stdout.trim()) : null;
}

/** A bin folder with node, npm, a shell and the few tools npm's scripts use: no compiler, cmake, make or Python. */
function sandboxBin(dir) {
  mkdirSync(dir);
  const tools = { node: process.execPath, npm: which('npm') };
  for (const t of ['sh', 'bash', 'env', 'cat', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'chmod', 'uname']) tools[t] = which(t);
  for (const [name, target] of Object.entries(tools)) {
    assert.ok(target, `${name} is not on this machine's PATH`);
    symlinkSync(target, path.join(dir, name));
  }
  return dir;
}

/**
 * A copy of the checkout's files (tracked, and new ones git does not ignore: what a clone with these changes has)
 * in `dir`, with the checkout's node_modules linked in. No build/, .sdk/ or prebuilds/ come with it.
 */
function copyCheckout(dir) {
  const r = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT });
  assert.equal(r.status, 0, `git ls-files failed: ${r.stderr}`);
  for (const file of r.stdout.split('\0').filter(Boolean)) {
    if (existsSync(path.join(ROOT, file))) cpSync(path.join(ROOT, file), path.join(dir, file), { recursive: true });
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** What an app gets on this machine: the sandbox PATH and HOME (for npm's cache), nothing of the repo's. */
function appEnv(bin) {
  return { PATH: bin, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR ?? '/tmp', LANG: 'C.UTF-8' };
}

const APP_SCRIPT = `
const { readFileSync } = require('node:fs');
const { Pipeline, defaultModelDir } = require('multilora');
(async () => {
  const pipeline = await Pipeline.load(defaultModelDir());
  const image = await pipeline.generate('a lighthouse on a cliff', { seed: 7, steps: 3, width: 64, height: 64 });
  await pipeline.dispose();
  let min = 255, max = 0;
  for (const v of image.data) { if (v < min) min = v; if (v > max) max = v; }
  const loaded = readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5])
    .filter((f) => f && /\\.(node|so[.\\d]*)$/.test(f));
  console.log(JSON.stringify({
    width: image.width, height: image.height, channels: image.channels, bytes: image.data.length,
    distinct: new Set(image.data).size, min, max, loaded: [...new Set(loaded)], main: require.resolve('multilora'),
  }));
})().catch((e) => { console.error(e.code, e.message); process.exit(3); });
`;

describe('prebuilt binaries (npm run prebuild, npm pack, npm install <tarball>)', function () {
  this.timeout(600_000);
  const tmp = useTempDir('multilora-pack-');
  const prebuildsBefore = readdirSync(path.join(ROOT, 'prebuilds')).sort();
  let manifest;
  let pack;
  let bin;
  let app;

  before(async function () {
    const checkout = copyCheckout(path.join(tmp(), 'checkout'));
    // The copy builds with the checkout's SDK; a prebuild that the checkout has, made from the native sources that
    // are here (`npm run prebuild` there), is reused; otherwise `npm run prebuild` makes one in the copy.
    const env = { ...process.env, MULTILORA_SDK_DIR: process.env.MULTILORA_SDK_DIR ?? path.join(ROOT, '.sdk') };
    const { readPrebuild } = await import(pathToFileURL(path.join(ROOT, 'scripts', 'prebuild-manifest.mjs')).href);
    if (readPrebuild().addon) {
      cpSync(path.join(ROOT, 'prebuilds', PLATFORM), path.join(checkout, 'prebuilds', PLATFORM), { recursive: true });
    } else {
      const r = run('npm', ['run', 'prebuild'], { cwd: checkout, env });
      assert.equal(r.status, 0, `npm run prebuild failed:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /wrote prebuilds\/linux-x64\/: multilora\.glibc\.node and \d+ runtime files/);
    }
    manifest = JSON.parse(readFileSync(path.join(checkout, 'prebuilds', PLATFORM, 'prebuild.json'), 'utf8'));

    const r = run('npm', ['pack', '--json', '--pack-destination', tmp()], { cwd: checkout, env });
    assert.equal(r.status, 0, `npm pack failed:\n${r.stderr}`);
    [pack] = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')));
    bin = sandboxBin(path.join(tmp(), 'bin'));
    app = path.join(tmp(), 'app');
    mkdirSync(app);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'an-app', private: true }));
  });

  it('packs the addon, the runtime it carries and the embedded model, and no junk', function () {
    const files = new Set(pack.files.map((f) => f.path));
    const prebuilt = [manifest.addon, 'prebuild.json', ...manifest.libraries].map((f) => `prebuilds/${PLATFORM}/${f}`);
    for (const f of [
      'dist/index.js',
      'dist/index.d.ts',
      'scripts/install.mjs',
      'scripts/prebuild-manifest.mjs',
      ...prebuilt,
    ]) {
      assert.ok(files.has(f), `${f} is not in the tarball`);
    }
    for (const dir of ['models/sdxl-tiny/', 'models/sdxl-tiny-loras/']) {
      assert.ok(
        [...files].some((f) => f.startsWith(dir)),
        `${dir} (the embedded model) is missing`,
      );
    }
    const junk = [...files].filter(
      (f) =>
        /(^|\/)(node_modules|build|\.sdk|tmp|__pycache__)\//.test(f) ||
        /\.(map|tgz|pyc|log)$/.test(f) ||
        /^(lib|docs|\.ci)\//.test(f) ||
        /^test\//.test(f) ||
        (f.startsWith('prebuilds/') && !prebuilt.includes(f)) ||
        (f.startsWith('scripts/') &&
          !/^scripts\/(install|setup-sdk|sdk-config|build-native|prebuild-manifest)\.mjs$/.test(f)),
    );
    assert.deepEqual(junk, []);
    // The runtime is most of it: ~55 MB compressed of ~165 MB (README.md, "Prebuilt binaries").
    assert.ok(pack.size < 70e6, `the tarball is ${pack.size} bytes`);
    assert.ok(pack.unpackedSize < 190e6, `the package unpacks to ${pack.unpackedSize} bytes`);
  });

  it('installs the tarball with no compiler, cmake or Python on PATH, and says it uses the prebuild', function () {
    for (const tool of ['cmake', 'g++', 'gcc', 'cc', 'c++', 'make', 'python3', 'python', 'pip']) {
      const r = run('sh', ['-c', `command -v ${tool}`], { env: appEnv(bin) });
      assert.notEqual(r.status, 0, `${tool} is on the sandbox PATH: ${r.stdout}`);
    }
    const tgz = path.join(tmp(), pack.filename);
    const r = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', tgz], {
      cwd: app,
      env: appEnv(bin),
    });
    assert.equal(r.status, 0, `npm install failed:\n${r.stdout}\n${r.stderr}`);
    const ours = r.stdout.split('\n').filter((l) => l.startsWith('multilora:'));
    assert.equal(ours.length, 1, r.stdout);
    assert.match(
      ours[0],
      /^multilora: using the prebuilt addon in prebuilds\/linux-x64\/ with the OpenVINO GenAI runtime it carries/,
    );
    const pkg = path.join(app, 'node_modules', 'multilora');
    assert.ok(existsSync(path.join(pkg, 'prebuilds', PLATFORM, manifest.addon)));
    assert.ok(!existsSync(path.join(pkg, 'build')), 'the installed package has a build/ folder: it built from source');
    assert.ok(!existsSync(path.join(pkg, '.sdk')), 'the installed package set up an SDK');
  });

  it('generates an image in the app with the prebuilt addon and only the libraries beside it', function () {
    const r = run(process.execPath, ['-e', APP_SCRIPT], { cwd: app, env: appEnv(bin) });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.deepEqual([out.width, out.height, out.channels, out.bytes], [64, 64, 3, 64 * 64 * 3]);
    assert.ok(
      out.distinct > 32 && out.max - out.min > 32,
      `a blank image: ${out.distinct} values in ${out.min}..${out.max}`,
    );

    const pkg = realpathSync(path.join(app, 'node_modules', 'multilora'));
    assert.equal(out.main, path.join(pkg, 'dist', 'index.js'));
    const prebuilds = path.join(pkg, 'prebuilds', PLATFORM);
    const ours = out.loaded.filter((f) => !f.startsWith('/usr/') && !f.startsWith('/lib'));
    assert.ok(
      ours.includes(path.join(prebuilds, manifest.addon)),
      `the prebuilt addon was not loaded: ${ours.join(', ')}`,
    );
    for (const lib of [
      'libopenvino_genai.so.2630',
      'libopenvino.so.2630',
      'libopenvino_intel_cpu_plugin.so',
      'libopenvino_tokenizers.so',
    ]) {
      assert.ok(
        ours.includes(path.join(prebuilds, lib)),
        `${lib} was not loaded from beside the addon: ${ours.join(', ')}`,
      );
    }
    assert.deepEqual(
      ours.filter((f) => !f.startsWith(prebuilds + path.sep)),
      [],
      'libraries loaded from elsewhere',
    );
  });

  it("leaves the checkout's prebuilds/ as it found it", function () {
    assert.deepEqual(readdirSync(path.join(ROOT, 'prebuilds')).sort(), prebuildsBefore);
  });
});
