// The `multilora` command, end to end: node dist/cli/main.js in a child process, on the real GenAI and the fixtures.
// Its argument parsers alone (lib/cli/args.ts) are test/cli-args.spec.js.
'use strict';
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const http = require('node:http');
const { readFileSync, writeFileSync, existsSync } = require('node:fs');
const path = require('node:path');
const { PNG } = require('pngjs');
const jpeg = require('jpeg-js');
const { ROOT, families, useTempDir } = require('./helpers/fixtures');

const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const sdxl = families.sdxl;
const QUICK = ['--steps', '2', '--width', '96', '--height', '64'];

/** Runs the command; resolves with its status, stdout (bytes) and stderr (text). `onStderr` sees stderr as it comes. */
function run(args, { cwd, onStderr } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    child.stdout.on('data', (chunk) => out.push(chunk));
    child.stderr.on('data', (chunk) => {
      err += chunk;
      onStderr?.(err, child);
    });
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout: Buffer.concat(out), stderr: err }));
  });
}

/** GET `path` on 127.x `connect`:`port` with a Host header (fetch would send its own): the status and the JSON body. */
function getWithHost(connect, port, path, host) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: connect, port, path, headers: { host } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
    });
    req.on('error', reject);
  });
}

function decodePng(bytes) {
  return PNG.sync.read(bytes);
}

describe('multilora (the CLI)', function () {
  const workDir = useTempDir('multilora-cli-');

  describe('bad usage: exit 2 with one line on stderr, before the model is read', function () {
    const cases = [
      [['generate', 'a cat', '--bogus'], /unknown option '--bogus'/],
      [['generate'], /missing required argument 'prompt'/],
      [['generate', 'a cat', '--seed', '-1'], /Expected an integer from 0 to 4294967295 for --seed but received "-1"/],
      [
        ['generate', 'a cat', '--seed', 'abc'],
        /Expected an integer from 0 to 4294967295 for --seed but received "abc"/,
      ],
      [['generate', 'a cat', '--seed', '1', '--random-seed'], /--seed <n>' cannot be used with option '--random-seed'/],
      [
        ['generate', 'a cat', '--width', '65'],
        /Expected a multiple of 2 \(the model's VAE scale factor\) for --width but received "65"/,
      ],
      [['generate', 'a cat', '--steps', '0'], /Expected an integer from 1 to 1000 for --steps/],
      [['generate', 'a cat', '--guidance', 'lots'], /Expected a number from 0 to 100 for --guidance/],
      [['generate', 'a cat', '--out', 'cat.gif'], /Expected a file name ending in \.png, \.jpg or \.jpeg/],
      [['generate', 'a cat', '--out', '-', '--json'], /--json and --out - both write to stdout/],
      [['generate', 'a cat', '--lora', 'nopath'], /Expected name=path\[:alpha\] for --lora but received "nopath"/],
      [
        ['generate', 'a cat', '--lora', 'a=x.safetensors:500'],
        /Expected a number from -100 to 100 for the alpha of --lora/,
      ],
      [['generate', 'a cat', '--use', 'a'], /--use picks adapters of a catalogue: give --catalog/],
      [['generate', 'a cat', '--scheduler', 'fastest'], /Allowed choices are auto, lcm/],
      [['info', '--catalog', 'no-such-catalogue.json'], /ERR_INVALID_ARGUMENT: Cannot read the catalogue/],
      [['serve', '--port', '99999'], /Expected an integer from 0 to 65535 for --port but received "99999"/],
      // The checks of the address come before the model loads: one line, no "loading" line before it.
      [
        ['serve', '--host', '999.1.1.1'],
        /ERR_INVALID_ARGUMENT: Expected an IP address or a host name for host but received "999\.1\.1\.1"/,
      ],
      [
        ['serve', '--host', 'no-such-host.invalid'],
        /ERR_INVALID_ARGUMENT: Expected an IP address or a host name that resolves for host/,
      ],
    ];
    for (const [args, message] of cases) {
      it(args.join(' '), async function () {
        const r = await run(args, { cwd: workDir() });
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, message);
        assert.match(r.stderr, /^multilora: /);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.equal(r.stdout.length, 0);
      });
    }
  });

  describe('generate --out: a place that cannot be written is exit 2, before the model loads', function () {
    const { mkdirSync } = require('node:fs');
    before(function () {
      mkdirSync(path.join(workDir(), 'folder.png'));
      mkdirSync(path.join(workDir(), 'shots-2.png'));
      writeFileSync(path.join(workDir(), 'kept.png'), 'old bytes');
    });
    const cases = [
      [['--out', 'folder.png'], /^multilora: Expected a file, not a folder, for --out but received "folder\.png"\n$/],
      [
        ['--out', 'shots.png', '--n', '2'],
        /^multilora: Expected a file, not a folder, for --out but received "shots-2\.png"\n$/,
      ],
      [
        ['--out', 'no-such-folder/cat.png'],
        /^multilora: Expected a file in an existing folder \(no folder .*no-such-folder\) for --out but received "no-such-folder\/cat\.png"\n$/,
      ],
      [
        ['--out', 'kept.png/cat.png'],
        /^multilora: Expected a file in an existing folder \(no folder .*kept\.png\) for --out/,
      ],
      // sysfs refuses new files, to root too.
      [
        ['--out', '/sys/multilora-cat.png'],
        /^multilora: Expected a file this user can write \(EACCES in \/sys\) for --out but received "\/sys\/multilora-cat\.png"\n$/,
      ],
      [
        ['--out', 'cat.webp'],
        /^multilora: Expected a file name ending in \.png, \.jpg or \.jpeg, or - for stdout for --out/,
      ],
    ];
    for (const [args, message] of cases) {
      it(args.join(' '), async function () {
        const r = await run(['generate', 'a cat', '--steps', '1', ...args], { cwd: workDir() });
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, message);
        // Nothing on stdout: "seed N", printed just before the load, never came.
        assert.equal(r.stdout.length, 0, r.stdout.toString());
      });
    }

    it('leaves no file behind, and an existing one untouched, when a later check fails', async function () {
      for (const out of ['new.png', 'kept.png']) {
        const r = await run(['generate', 'a cat', '--out', out, '--width', '65'], { cwd: workDir() });
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, /for --width/);
      }
      const left = {
        'new.png exists': existsSync(path.join(workDir(), 'new.png')),
        'kept.png': readFileSync(path.join(workDir(), 'kept.png'), 'utf8'),
      };
      assert.deepEqual(left, { 'new.png exists': false, 'kept.png': 'old bytes' });
    });
  });

  it('exits 1 naming ERR_MODEL_NOT_FOUND for a missing model folder, with no stack trace', async function () {
    const missing = path.join(workDir(), 'no-model');
    const r = await run(['generate', 'a cat', '--model', missing], { cwd: workDir() });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `multilora: ERR_MODEL_NOT_FOUND: No model folder at ${missing}\n`);
  });

  describe('generate', function () {
    // One run per form of output; each assertion below reads them.
    let png;
    let json;
    let stdout;
    let jpg;
    let lora;
    let catalogue;
    before(async function () {
      const catalogFile = path.join(workDir(), 'loras.json');
      writeFileSync(
        catalogFile,
        JSON.stringify({ 'X-ray': { path: sdxl.lora('style-a'), alpha: 0.7 }, other: { path: sdxl.lora('style-b') } }),
      );
      [png, json, stdout, jpg, lora, catalogue] = await Promise.all([
        run(['generate', 'a cat', '--seed', '42', ...QUICK, '--out', 'a.png'], { cwd: workDir() }),
        run(['generate', 'a cat', '--seed', '42', ...QUICK, '--out', 'b.png', '--json'], { cwd: workDir() }),
        run(['generate', 'a cat', '--seed', '42', ...QUICK, '--out', '-'], { cwd: workDir() }),
        run(['generate', 'a cat', '--seed', '7', ...QUICK, '--out', 'c.jpg', '--n', '2'], { cwd: workDir() }),
        run(
          [
            'generate',
            'a cat',
            '--seed',
            '42',
            ...QUICK,
            '--lora',
            `xray=${sdxl.lora('style-a')}:0.7`,
            '--out',
            'lora.png',
          ],
          { cwd: workDir() },
        ),
        run(
          [
            'generate',
            'a cat',
            '--seed',
            '42',
            ...QUICK,
            '--catalog',
            catalogFile,
            '--use',
            'X-ray',
            '--out',
            'cat.png',
            '--json',
          ],
          { cwd: workDir() },
        ),
      ]);
      for (const r of [png, json, stdout, jpg, lora, catalogue]) assert.equal(r.status, 0, r.stderr);
    });

    it('writes a PNG of the requested size, and prints the seed and timings', function () {
      const image = decodePng(readFileSync(path.join(workDir(), 'a.png')));
      assert.equal(image.width, 96);
      assert.equal(image.height, 64);
      const text = png.stdout.toString();
      assert.match(text, /wrote a\.png \(96x64\)/);
      assert.match(text, /seed 42/);
      assert.match(text, /load \d.* · generate \d/);
    });

    it('reports progress on stderr as step lines when stderr is not a terminal', function () {
      assert.match(png.stderr, /^step 1\/2 .*ETA/m);
      assert.match(png.stderr, /^step 2\/2 /m);
    });

    it("prints a bounded number of step lines to a non-terminal: at most 11 for the model's 50 steps", async function () {
      const r = await run(['generate', 'a cat', '--width', '64', '--height', '64', '--out', 'fifty.png'], {
        cwd: workDir(),
      });
      assert.equal(r.status, 0, r.stderr);
      const steps = [...r.stderr.matchAll(/^step (\d+)\/(\d+) /gm)].map((m) => `${m[1]}/${m[2]}`);
      // The first step, the first of each tenth (5, 10, ... 45) and the last (fewer if the addon dropped events).
      assert.ok(steps.length >= 2 && steps.length <= 11, `${steps.length} step lines:\n${r.stderr}`);
      assert.equal(steps.at(-1), '50/50');
    });

    it('gives the same bytes for the same --seed', function () {
      assert.ok(readFileSync(path.join(workDir(), 'a.png')).equals(readFileSync(path.join(workDir(), 'b.png'))));
    });

    it('--json prints only a JSON summary on stdout: files, seed, size, adapters, timings', function () {
      const summary = JSON.parse(json.stdout.toString());
      assert.deepEqual(summary.files, [path.join(workDir(), 'b.png')]);
      assert.equal(summary.seed, 42);
      assert.equal(summary.width, 96);
      assert.equal(summary.height, 64);
      assert.equal(summary.steps, 2);
      assert.deepEqual(summary.adapters, []);
      assert.ok(summary.timings.loadMs > 0);
      assert.ok(summary.timings.generateMs > 0);
      assert.ok(summary.timings.metrics.totalMs > 0);
      assert.ok(summary.timings.metrics.stepMs.mean > 0);
      assert.match(json.stderr, /wrote b\.png/); // the human lines moved to stderr
    });

    it('--out - writes the PNG to stdout, and everything else to stderr', function () {
      assert.ok(stdout.stdout.equals(readFileSync(path.join(workDir(), 'a.png'))));
      assert.match(stdout.stderr, /wrote a 96x64 PNG to stdout/);
    });

    it('exits 1 with one line, no stack trace, when stdout closes before the image is written', async function () {
      const child = spawn(process.execPath, [MAIN, 'generate', 'a cat', ...QUICK, '--out', '-'], {
        cwd: workDir(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr += chunk));
      const status = await new Promise((resolve) => child.on('close', resolve));
      assert.equal(status, 1, stderr);
      assert.match(stderr, /\nmultilora: write EPIPE\n$/);
      assert.doesNotMatch(stderr, /Unhandled|\n\s+at /);
    });

    it('writes JPEG by the extension, numbered files with --n', function () {
      assert.ok(!existsSync(path.join(workDir(), 'c.jpg')));
      const images = ['c-1.jpg', 'c-2.jpg'].map((f) => jpeg.decode(readFileSync(path.join(workDir(), f))));
      for (const image of images) {
        assert.equal(image.width, 96);
        assert.equal(image.height, 64);
      }
      assert.ok(!images[0].data.equals(images[1].data), 'the two images of a batch differ');
    });

    it('--lora name=path:alpha changes the image', function () {
      const withLora = decodePng(readFileSync(path.join(workDir(), 'lora.png'))).data;
      const without = decodePng(readFileSync(path.join(workDir(), 'a.png'))).data;
      let diff = 0;
      for (let i = 0; i < without.length; i += 1) diff += Math.abs(withLora[i] - without[i]);
      assert.ok(diff / without.length >= 1, `mean difference ${diff / without.length}`);
      assert.match(lora.stdout.toString(), /xray:0\.7/);
    });

    it('--catalog with --use runs a catalogue adapter at its alpha: the same bytes as that --lora', function () {
      assert.ok(readFileSync(path.join(workDir(), 'cat.png')).equals(readFileSync(path.join(workDir(), 'lora.png'))));
      const summary = JSON.parse(catalogue.stdout.toString());
      assert.deepEqual(summary.adapters, [{ name: 'X-ray', alpha: 0.7, path: sdxl.lora('style-a') }]);
    });

    it('Ctrl-C (SIGINT) aborts the generation and exits 130', async function () {
      let sent = false;
      const r = await run(['generate', 'a cat', '--steps', '1000', '--out', 'never.png'], {
        cwd: workDir(),
        onStderr: (text, child) => {
          if (!sent && /^step \d+\/1000/m.test(text)) {
            sent = true;
            child.kill('SIGINT');
          }
        },
      });
      assert.ok(sent, r.stderr);
      assert.equal(r.status, 130, r.stderr);
      assert.match(r.stderr, /multilora: ERR_ABORTED: interrupted\n$/);
      assert.ok(!/^step 1000\/1000/m.test(r.stderr), 'it stopped before the last step');
      assert.ok(!existsSync(path.join(workDir(), 'never.png')));
    });
  });

  describe('info', function () {
    it("prints the model's defaults and each adapter's match report, as text or JSON", async function () {
      const args = ['info', '--lora', `a=${sdxl.lora('style-a')}:0.5`, '--lora', `p=${sdxl.lora('style-a-peft')}`];
      const [r, j] = await Promise.all([run(args), run([...args, '--json'])]);
      assert.equal(r.status, 0, r.stderr);
      const text = r.stdout.toString();
      assert.match(text, /pipeline +StableDiffusionXLPipeline \(family sdxl\)/);
      assert.match(text, /defaults +64x64, 50 steps, guidance 5/);
      assert.match(text, /image inputs +yes/);
      assert.match(text, /a: alpha 0\.5, .*style-a\.safetensors/);
      assert.match(text, /format kohya, rank 4, targets unet, text_encoder, text_encoder_2/);
      assert.match(text, /tensors: 240 matched, 0 unmatched/);
      assert.match(text, /format peft \(rewritten for GenAI\)/);

      assert.equal(j.status, 0, j.stderr);
      const info = JSON.parse(j.stdout.toString());
      assert.equal(info.model.pipelineClass, 'StableDiffusionXLPipeline');
      assert.equal(info.model.family, 'sdxl');
      assert.equal(info.model.vaeScaleFactor, 2);
      assert.deepEqual(info.defaults, { width: 64, height: 64, steps: 50, guidanceScale: 5 });
      assert.equal(info.imageInputs, true);
      assert.deepEqual(
        info.adapters.map((a) => [a.name, a.alpha, a.info.format, a.info.matched]),
        [
          ['a', 0.5, 'kohya', 240],
          ['p', 1, 'peft', 160],
        ],
      );
    });

    it('exits 1 naming ERR_ADAPTER_UNMATCHED for a LoRA that patches nothing in the model', async function () {
      const r = await run(['info', '--lora', `u=${sdxl.lora('unmatched')}`]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^multilora: ERR_ADAPTER_UNMATCHED: Adapter "u" patches no layer of this sdxl model/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    });

    it('exits 1 naming ERR_ADAPTER_INCOMPATIBLE for a LoRA made for another base model', async function () {
      const r = await run(['info', '--model', sdxl.model, '--lora', `w=${sdxl.lora('wrong-base')}`]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^multilora: ERR_ADAPTER_INCOMPATIBLE: Adapter "w" does not fit this model/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  });

  it('docs/CLI.md documents every flag of every command', async function () {
    const doc = readFileSync(path.join(ROOT, 'docs', 'CLI.md'), 'utf8');
    for (const command of ['generate', 'info', 'serve']) {
      assert.match(doc, new RegExp(`## \`multilora ${command}`));
      const help = (await run([command, '--help'])).stdout.toString();
      const flags = [...help.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]).filter((f) => f !== '--help');
      assert.ok(flags.length >= 3, help);
      for (const flag of flags) assert.ok(doc.includes(`\`${flag}`), `${command} ${flag} is not in docs/CLI.md`);
    }
  });

  describe('serve', function () {
    /** Starts `multilora serve` with `args`; resolves once it prints its URL. */
    async function serve(args, env = {}) {
      const child = spawn(process.execPath, [MAIN, 'serve', '--port', '0', ...args], {
        cwd: workDir(),
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      });
      const s = { child, stdout: '', stderr: '' };
      child.stderr.on('data', (chunk) => (s.stderr += chunk));
      s.exited = new Promise((resolve) => child.on('close', (status) => resolve(status)));
      await new Promise((resolve, reject) => {
        child.stdout.on('data', (chunk) => {
          s.stdout += chunk;
          const m = /^multilora serving on (http:\/\/\S+)/m.exec(s.stdout);
          if (m && !s.url) {
            s.url = m[1];
            s.port = Number(new URL(s.url).port);
            resolve();
          }
        });
        child.on('close', () => reject(new Error(`exited before serving: ${s.stderr}`)));
      });
      return s;
    }

    it('--port in use exits 2 at once, with one line and no load', async function () {
      const taken = require('node:net').createServer();
      await new Promise((resolve) => taken.listen(0, '127.0.0.1', resolve));
      try {
        const r = await run(['serve', '--port', String(taken.address().port)], { cwd: workDir() });
        assert.equal(r.status, 2, r.stderr);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr); // no "loading" line
        assert.match(
          r.stderr,
          /^multilora: ERR_INVALID_ARGUMENT: Expected a free port for port but received \d+: .*EADDRINUSE/,
        );
      } finally {
        await new Promise((resolve) => taken.close(resolve));
      }
    });

    it('--host 0.0.0.0 prints the real address, and warns on stderr in one line that it is open without authentication', async function () {
      const s = await serve(['--host', '0.0.0.0']);
      try {
        assert.match(
          s.stdout,
          /^multilora serving on http:\/\/0\.0\.0\.0:\d+ \(every IPv4 address of this machine\)$/m,
        );
        const res = await getWithHost('127.0.0.1', s.port, '/v1/status', 'lan-name.example');
        assert.equal(res.status, 200); // no Host guard off loopback
      } finally {
        s.child.kill('SIGTERM');
      }
      assert.equal(await s.exited, 0, s.stderr);
      const warnings = s.stderr.split('\n').filter((line) => line.startsWith('multilora: warning:'));
      assert.equal(warnings.length, 1, s.stderr);
      assert.match(
        warnings[0],
        /listening on every IPv4 address of this machine, not only on this machine, with no authentication/,
      );
    });

    it('MULTILORA_API_KEY: the API needs the key, and the warning for 0.0.0.0 says a key is set', async function () {
      const key = 'cli-test-key-0123456789';
      const s = await serve(['--host', '0.0.0.0'], { MULTILORA_API_KEY: key });
      try {
        const without = await getWithHost('127.0.0.1', s.port, '/v1/status', `127.0.0.1:${s.port}`);
        assert.equal(without.status, 401);
        assert.equal(without.body.error.code, 'ERR_UNAUTHORIZED');
        const res = await fetch(`http://127.0.0.1:${s.port}/v1/status`, {
          headers: { authorization: `Bearer ${key}` },
        });
        assert.equal(res.status, 200);
        assert.equal((await fetch(`http://127.0.0.1:${s.port}/`)).status, 200);
      } finally {
        s.child.kill('SIGTERM');
      }
      assert.equal(await s.exited, 0, s.stderr);
      const warnings = s.stderr.split('\n').filter((line) => line.startsWith('multilora: warning:'));
      assert.equal(warnings.length, 1, s.stderr);
      assert.match(
        warnings[0],
        /listening on every IPv4 address of this machine, not only on this machine, with an API key: /,
      );
      assert.ok(!s.stderr.includes(key) && !s.stdout.includes(key), 'the key is printed');
    });

    it('--api-key refuses a short key with exit 2, without printing it', async function () {
      const r = await run(['serve', '--api-key', 'hunter2'], { cwd: workDir() });
      assert.equal(r.status, 2, r.stderr);
      assert.match(
        r.stderr,
        /^multilora: Expected 16 to 4096 letters, digits or -\._~\+\/ .* for --api-key \(or MULTILORA_API_KEY\) but received a string of 7 characters\n$/,
      );
      assert.doesNotMatch(r.stderr, /hunter2/);
    });

    it('--host 127.0.0.2 prints that address, warns of nothing, and keeps the Host guard', async function () {
      const s = await serve(['--host', '127.0.0.2']);
      try {
        assert.match(s.stdout, /^multilora serving on http:\/\/127\.0\.0\.2:\d+$/m);
        const res = await getWithHost('127.0.0.2', s.port, '/v1/status', 'attacker.example');
        assert.equal(res.status, 403);
        assert.equal(res.body.error.code, 'ERR_FORBIDDEN_HOST');
        assert.equal((await getWithHost('127.0.0.2', s.port, '/v1/status', `127.0.0.2:${s.port}`)).status, 200);
      } finally {
        s.child.kill('SIGTERM');
      }
      assert.equal(await s.exited, 0, s.stderr);
      assert.doesNotMatch(s.stderr, /warning/);
    });

    for (const signal of ['SIGINT', 'SIGTERM']) {
      it(`prints the URL, serves the page there, and on ${signal} closes and exits 0`, async function () {
        let url;
        let page;
        const child = spawn(
          process.execPath,
          [MAIN, 'serve', '--port', '0', '--lora', `a=${sdxl.lora('style-a')}:0.5`],
          {
            cwd: workDir(),
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        child.stderr.on('data', (chunk) => (stderr += chunk));
        const exited = new Promise((resolve) => child.on('close', (status) => resolve(status)));
        await new Promise((resolve, reject) => {
          child.stdout.on('data', (chunk) => {
            stdout += chunk;
            const m = /^multilora serving on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout);
            if (m && !url) {
              url = m[1];
              resolve();
            }
          });
          child.on('close', () => reject(new Error(`exited before serving: ${stderr}`)));
        });
        try {
          page = await fetch(`${url}/`);
          assert.equal(page.status, 200);
          assert.match(page.headers.get('content-type'), /^text\/html/);
        } finally {
          child.kill(signal);
        }
        assert.equal(await exited, 0, stderr);
      });
    }
  });
});
