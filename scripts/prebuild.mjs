#!/usr/bin/env node
// `npm run prebuild`: makes prebuilds/linux-x64/, the prebuilt addon that `npm pack` ships and `npm install` of the
// tarball uses without Python, cmake or a compiler (README.md, "Prebuilt binaries"). prebuildify drives the build
// (its node-gyp step is scripts/prebuild-backend.mjs: cmake-js with MULTILORA_RELOCATABLE=ON), strips the addon and
// names it; then the OpenVINO GenAI runtime is copied from the SDK beside it, and its closure is checked: every
// library that a bundled file needs is bundled too, or is one of the system's.
//
// `node scripts/prebuild.mjs --check` (npm's prepack) refuses a prebuild made from other native sources.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MANIFEST, NAPI_VERSION, PREBUILD_DIR, readPrebuild, sourcesHash } from './prebuild-manifest.mjs';
import { ROOT, SDK_WHEELS } from './sdk-config.mjs';
import { setupSdk } from './setup-sdk.mjs';

/** prebuildify's working folder: it takes the addon from build/Release below it. */
const STAGE = path.join(ROOT, 'build', 'prebuild');

/**
 * The runtime the addon needs, as the SDK's wheels lay it out: [folder, file pattern, why]. What is left out:
 * the frontends of other model formats (GenAI reads OpenVINO IR only), OpenVINO's C API, tbbmalloc_proxy.
 */
function runtimeFiles(sdk) {
  const ov = sdk.openvinoLibDir;
  return [
    [sdk.genaiLibDir, /^libopenvino_genai\.so\.\d+$/, 'GenAI'],
    [
      path.dirname(sdk.tokenizersLib),
      /^libopenvino_tokenizers\.so$/,
      'the tokenizers, which GenAI loads from beside itself',
    ],
    [ov, /^libopenvino\.so\.\d+$/, 'OpenVINO'],
    [ov, /^libopenvino_ir_frontend\.so\.\d+$/, 'the IR reader'],
    [
      ov,
      /^libopenvino_[a-z_]+_plugin\.so$/,
      'the device plugins (CPU, GPU, NPU, AUTO, HETERO, BATCH), found beside libopenvino',
    ],
    [ov, /^cache\.json$/, "the GPU plugin's kernel cache, read from beside it"],
    [ov, /^libtbb(malloc|bind_2_5)?\.so\.\d+$/, 'TBB, its allocator and its NUMA binding'],
    [ov, /^libhwloc\.so\.\d+$/, "hwloc, tbbbind's"],
  ];
}

/** Libraries every glibc system has; libOpenCL.so.1 (the OpenCL loader) only the GPU plugin needs. */
const SYSTEM = new Set([
  'libc.so.6',
  'libm.so.6',
  'libdl.so.2',
  'libpthread.so.0',
  'librt.so.1',
  'libgcc_s.so.1',
  'libstdc++.so.6',
  'ld-linux-x86-64.so.2',
  'libOpenCL.so.1',
]);

function dynamic(file) {
  const out = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  const values = (tag) => [...out.matchAll(new RegExp(`\\(${tag}\\)\\s+.*?\\[(.*)\\]`, 'g'))].map((m) => m[1]);
  return { needed: values('NEEDED'), rpath: values('RPATH'), runpath: values('RUNPATH') };
}

function isElf(file) {
  return /\.(so(\.\d+)*|node)$/.test(file);
}

function megabytes(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

async function makePrebuild() {
  const sdk = setupSdk();
  const { default: prebuildify } = await import('prebuildify');
  rmSync(PREBUILD_DIR, { recursive: true, force: true });
  rmSync(path.join(STAGE, 'build'), { recursive: true, force: true });
  mkdirSync(STAGE, { recursive: true });

  await new Promise((resolve, reject) => {
    prebuildify(
      {
        cwd: STAGE,
        out: ROOT,
        name: 'multilora',
        napi: true,
        strip: true,
        tagLibc: true,
        targets: [{ runtime: 'node', target: process.versions.node }],
        nodeGyp: path.join(ROOT, 'scripts', 'prebuild-backend.mjs'),
        cache: path.join(STAGE, 'devdir'),
      },
      (err) => (err ? reject(err) : resolve()),
    );
  });
  const addon = readdirSync(PREBUILD_DIR).find((f) => f.endsWith('.node'));
  if (!addon) throw new Error(`prebuildify wrote no .node into ${PREBUILD_DIR}`);

  const libraries = [];
  for (const [dir, pattern, why] of runtimeFiles(sdk)) {
    const hits = readdirSync(dir).filter((f) => pattern.test(f));
    if (!hits.length) throw new Error(`the SDK has no ${pattern} in ${dir} (${why})`);
    for (const f of hits) {
      copyFileSync(path.join(dir, f), path.join(PREBUILD_DIR, f));
      libraries.push(f);
    }
  }

  // The closure: what each bundled file needs is bundled or the system's, and the addon looks beside itself.
  const bundled = new Set([addon, ...libraries]);
  for (const f of [addon, ...libraries].filter(isElf)) {
    for (const need of dynamic(path.join(PREBUILD_DIR, f)).needed) {
      if (!bundled.has(need) && !SYSTEM.has(need))
        throw new Error(`${f} needs ${need}, which is neither bundled nor a system library`);
    }
  }
  const own = dynamic(path.join(PREBUILD_DIR, addon));
  if (own.rpath.join(':') !== '$ORIGIN' || own.runpath.length) {
    throw new Error(
      `${addon} must have RPATH $ORIGIN and no RUNPATH, but has RPATH [${own.rpath}] RUNPATH [${own.runpath}]`,
    );
  }

  const manifest = { addon, napi: NAPI_VERSION, sdk: SDK_WHEELS, sources: sourcesHash(), libraries: libraries.sort() };
  writeFileSync(path.join(PREBUILD_DIR, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  rmSync(path.join(STAGE, 'build'), { recursive: true, force: true });

  const total = [addon, ...libraries].reduce((sum, f) => sum + statSync(path.join(PREBUILD_DIR, f)).size, 0);
  console.log(
    `multilora: wrote ${path.relative(ROOT, PREBUILD_DIR)}/: ${addon} and ${libraries.length} runtime files, ` +
      `${megabytes(total)}, RPATH $ORIGIN (npm pack ships it)`,
  );
}

function check() {
  const found = readPrebuild();
  if (found.addon) {
    console.error(`multilora: packing the prebuild in ${path.relative(ROOT, PREBUILD_DIR)}/`);
  } else if (found.reason === null && !existsSync(PREBUILD_DIR)) {
    console.error(
      'multilora: packing without a prebuild (run `npm run prebuild` first): installs will build from source',
    );
  } else {
    console.error(
      `multilora: the prebuild in ${path.relative(ROOT, PREBUILD_DIR)}/ is stale (${found.reason ?? 'no manifest'}): run \`npm run prebuild\``,
    );
    process.exit(1);
  }
}

if (process.argv.includes('--check')) {
  check();
} else {
  try {
    await makePrebuild();
  } catch (err) {
    console.error(`multilora: npm run prebuild failed: ${err.message}`);
    process.exit(1);
  }
}
