// The `multilora` command's argument parsers (lib/cli/args.ts), in process: no addon, no child process. The command
// end to end is test/cli.spec.js.
'use strict';
const assert = require('node:assert/strict');
const { parseLora, parseUse, numberedFiles } = require('../dist/internal').cliArgs;

describe('multilora (the CLI)', function () {
  describe('reading name=path[:alpha] and name[:alpha]', function () {
    it('takes a trailing :number off as the alpha, and keeps other colons in the path', function () {
      assert.deepEqual(parseLora('a=loras/x.safetensors'), { name: 'a', path: 'loras/x.safetensors', alpha: 1 });
      assert.deepEqual(parseLora('a=loras/x.safetensors:0.8'), { name: 'a', path: 'loras/x.safetensors', alpha: 0.8 });
      assert.deepEqual(parseLora('a=/m:n/x.safetensors:-.5'), { name: 'a', path: '/m:n/x.safetensors', alpha: -0.5 });
      assert.deepEqual(parseLora('a=odd:1.5:1'), { name: 'a', path: 'odd:1.5', alpha: 1 });
      assert.deepEqual(parseLora('a=b=c.safetensors:2'), { name: 'a', path: 'b=c.safetensors', alpha: 2 });
      assert.deepEqual(parseUse('X-ray:0.8'), { name: 'X-ray', alpha: 0.8 });
      assert.deepEqual(parseUse('X-ray'), { name: 'X-ray' });
      assert.deepEqual(parseUse('a:b'), { name: 'a:b' });
    });

    it('refuses what is not name=path, or an alpha out of range', function () {
      for (const bad of ['a', '=x.safetensors', 'a=', 'a=:0.5']) {
        assert.throws(() => parseLora(bad), {
          name: 'UsageError',
          message: /^Expected name=path\[:alpha\] for --lora but received /,
        });
      }
      assert.throws(() => parseLora('a=x:1e9'), {
        message: /^Expected a number from -100 to 100 for the alpha of --lora/,
      });
      assert.throws(() => parseUse(':0.5'), { message: /^Expected name\[:alpha\] for --use/ });
    });

    it('numbers the files of a batch before the extension', function () {
      assert.deepEqual(numberedFiles('out/cat.png', 1), ['out/cat.png']);
      assert.deepEqual(numberedFiles('out/cat.jpg', 3), ['out/cat-1.jpg', 'out/cat-2.jpg', 'out/cat-3.jpg']);
    });
  });
});
