// native/genai/genai.h declares GenAI's API by hand: every function it declares must be exported by the real
// libopenvino_genai.so.2630, or a call would fail at run time (symbols bind lazily).
'use strict';
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { mkdtempSync, writeFileSync, rmSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, sdk } = require('./helpers/fixtures');

function compile(source, dir) {
  const obj = path.join(dir, `${path.basename(source)}.o`);
  execFileSync('g++', [
    '-std=c++17',
    '-c',
    '-I',
    path.join(ROOT, 'native'),
    '-isystem',
    sdk().openvinoInclude,
    source,
    '-o',
    obj,
  ]);
  return obj;
}

/** Mangled ov::genai symbols that an object file needs. */
function genaiNeeds(file) {
  return execFileSync('nm', ['-u', file], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/).pop())
    .filter((sym) => sym && sym.includes('2ov5genai'));
}

function libraryExports() {
  const out = execFileSync('nm', ['-D', '--defined-only', sdk().genaiLib], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return new Set(
    out
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[2])
      .filter(Boolean),
  );
}

function demangle(symbols) {
  return symbols.length ? execFileSync('c++filt', symbols, { encoding: 'utf8' }).trim().split('\n') : [];
}

describe('native/genai/genai.h against libopenvino_genai.so.2630', function () {
  let dir;
  let exported;
  before(function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'multilora-abi-'));
    exported = libraryExports();
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('names the library it was checked against', function () {
    assert.match(path.basename(sdk().genaiLib), /^libopenvino_genai\.so\.2630$/);
  });

  it('declares only functions that the library exports', function () {
    const needed = genaiNeeds(compile(path.join(ROOT, 'native', 'genai', 'abi_probe.cc'), dir));
    assert.ok(needed.length >= 40, `the probe references only ${needed.length} GenAI symbols`);
    const missing = needed.filter((sym) => !exported.has(sym));
    assert.deepEqual(demangle(missing), [], 'declared in genai.h but not exported by the library');
  });

  it('finds a declaration that the library does not export (the check can fail)', function () {
    const bad = path.join(dir, 'bad.cc');
    writeFileSync(
      bad,
      '#include "genai/genai.h"\n' +
        'namespace ov { namespace genai { MULTILORA_GENAI_API void not_in_the_library(int); } }\n' +
        'void call() { ov::genai::not_in_the_library(1); }\n',
    );
    const missing = genaiNeeds(compile(bad, dir)).filter((sym) => !exported.has(sym));
    assert.deepEqual(demangle(missing), ['ov::genai::not_in_the_library(int)']);
  });

  it('the built addon needs nothing from GenAI that the library lacks', function () {
    const addon = path.join(ROOT, 'build', 'Release', 'multilora.node');
    const needed = genaiNeeds(addon);
    assert.ok(needed.length > 0);
    assert.deepEqual(demangle(needed.filter((sym) => !exported.has(sym))), []);
  });
});
