// The README's shell blocks, run as they are written: what a newcomer types after cloning must work, and a command
// that names a file the checkout does not have fails here. The blocks are read from README.md itself, so an edit
// of the README changes what runs.
//
// Not run: a block with `<!-- readme.spec: not run (why) -->` on the line above it (the Hub, Redis, the converted
// real model), and the commands in NOT_RUN. Each command runs in bash in a folder of links to the checkout's
// entries, so that the files it writes land there (TMPDIR is a folder of its own too), not in the checkout. `serve`
// runs until stopped and binds port 7860, which another program on the machine may hold: the spec adds
// `--port 0` after the word `serve`, waits for the page, and stops the command's whole process group.
'use strict';
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const { mkdirSync, readdirSync, readFileSync, symlinkSync } = require('node:fs');
const path = require('node:path');
const { PNG } = require('pngjs');
const { ROOT, useTempDir } = require('./helpers/fixtures');

/** Commands of the README that the suite does not run, and why. */
const NOT_RUN = {
  'npm install': 'the suite runs after it, in this checkout',
  'npm test': 'the suite itself, this spec included',
  'bash scripts/setup-test-deps.sh': 'it installs Debian packages with apt-get, as root; the suite runs after it',
};
const MARKER = /^<!-- readme\.spec: not run \((.+)\) -->$/;

/** The fenced shell blocks of a markdown text: `{ line, commands, skip }`, commands joined across `\` ends. */
function shellBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i += 1) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    assert.ok(end > i, `README.md line ${i + 1}: a code block that does not end`);
    if (['sh', 'bash', 'shell', 'console'].includes(open[1])) {
      const commands = [];
      let pending = '';
      for (const text of lines.slice(i + 1, end)) {
        if (!pending && /^\s*(#|$)/.test(text)) continue;
        pending += text.endsWith('\\') ? `${text.slice(0, -1)} ` : text;
        if (!text.endsWith('\\')) {
          commands.push(pending.replace(/\s+/g, ' ').trim());
          pending = '';
        }
      }
      blocks.push({ line: i + 1, commands, skip: MARKER.exec(lines[i - 1] ?? '')?.[1] ?? null });
    }
    i = end;
  }
  return blocks;
}

/** Runs one command line in bash in `cwd`; resolves with its status and output. */
function bash(command, { cwd, env, onStdout }) {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

describe("README.md's shell blocks, run as written", function () {
  this.timeout(300_000);
  const tmp = useTempDir('multilora-readme-');
  const blocks = shellBlocks(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  let cwd;
  let env;
  let rootBefore;

  before(function () {
    rootBefore = readdirSync(ROOT);
    cwd = path.join(tmp(), 'checkout');
    mkdirSync(cwd);
    for (const entry of readdirSync(ROOT)) {
      if (entry !== '.git') symlinkSync(path.join(ROOT, entry), path.join(cwd, entry));
    }
    mkdirSync(path.join(tmp(), 'tmp'));
    env = { ...process.env, TMPDIR: path.join(tmp(), 'tmp') };
  });

  it('finds the blocks, and a reason for each one it does not run', function () {
    assert.ok(blocks.filter((b) => !b.skip).length >= 2, JSON.stringify(blocks, null, 2));
    for (const b of blocks) assert.ok(b.commands.length > 0, `README.md line ${b.line}: an empty block`);
  });

  for (const block of blocks) {
    if (block.skip) {
      it(`line ${block.line}: not run (${block.skip})`);
      continue;
    }
    for (const command of block.commands) {
      const notRun = Object.keys(NOT_RUN).find((c) => command === c || command.startsWith(`${c} `));
      if (notRun) {
        it(`line ${block.line}: ${notRun}: not run (${NOT_RUN[notRun]})`);
        continue;
      }
      it(`line ${block.line}: ${command.replace(/\s+#\s.*$/, '')}`, async function () {
        const serve = /(^|\s)multilora serve\b/.test(command);
        let url;
        const r = await bash(serve ? command.replace(/(multilora serve)\b/, '$1 --port 0') : command, {
          cwd,
          env,
          onStdout: serve
            ? (stdout, child) => {
                const found = /serving on (http:\/\/\S+)/.exec(stdout);
                if (!found || url) return;
                url = found[1];
                fetch(`${url}/`)
                  .then(async (page) => {
                    url = { status: page.status, type: page.headers.get('content-type'), body: await page.text() };
                  })
                  .catch((err) => (url = { error: err.message }))
                  .finally(() => {
                    try {
                      process.kill(-child.pid, 'SIGTERM');
                    } catch {
                      // It ended already.
                    }
                  });
              }
            : undefined,
        });
        const output = `${command}\nstatus ${r.status} ${r.signal ?? ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
        if (serve) {
          assert.equal(typeof url, 'object', `it never answered:\n${output}`);
          assert.equal(url.status, 200, output);
          assert.match(url.type, /^text\/html/);
        } else {
          assert.equal(r.status, 0, output);
        }
        assert.doesNotMatch(r.stderr, /multilora: ERR_|npm error/, output);
      });
    }
  }

  it('wrote its images into the folder of links, and nothing into the checkout', function () {
    assert.deepEqual(readdirSync(ROOT), rootBefore);
    const images = readdirSync(cwd).filter((entry) => entry.endsWith('.png') && !rootBefore.includes(entry));
    assert.ok(images.length >= 2, `images written: ${images.join(', ')}`);
    // `npm run example` with no file writes under the temporary folder (TMPDIR), not in its working folder.
    const example = readdirSync(env.TMPDIR).filter((entry) => entry.startsWith('multilora-example-'));
    assert.equal(example.length, 1, `TMPDIR holds ${readdirSync(env.TMPDIR).join(', ')}`);
    images.push(path.join('..', 'tmp', example[0], 'blend.png'));
    for (const image of images) {
      const png = PNG.sync.read(readFileSync(path.join(cwd, image)));
      assert.ok(png.width > 0 && png.height > 0, image);
    }
  });
});
