// scripts/check-commits.mjs, the commit-message check of CONTRIBUTING.md, run as a command on a throwaway git
// repository: a subject of at most 72 characters, a blank line, a body.
'use strict';
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const path = require('node:path');
const { ROOT, useTempDir } = require('./helpers/fixtures');

const SCRIPT = path.join(ROOT, 'scripts', 'check-commits.mjs');
const WHY = 'Why: the reason for this change.';

describe('scripts/check-commits.mjs', function () {
  const dir = useTempDir('multilora-commits-', { each: true });
  // The user's and the system's git config stay out: no signing, no hooks, the same identity everywhere.
  const env = {
    ...process.env,
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'Test',
    GIT_AUTHOR_EMAIL: 'test@example.invalid',
    GIT_COMMITTER_NAME: 'Test',
    GIT_COMMITTER_EMAIL: 'test@example.invalid',
  };
  const git = (...args) => execFileSync('git', args, { cwd: dir(), env, encoding: 'utf8' }).trim();
  const commit = (message) => {
    git('commit', '--allow-empty', '--quiet', '--cleanup=verbatim', '-m', message);
    return git('rev-parse', '--short=12', 'HEAD');
  };
  const check = (...args) => {
    const run = spawnSync(process.execPath, [SCRIPT, ...args], { cwd: dir(), env, encoding: 'utf8' });
    return { status: run.status, out: run.stdout + run.stderr };
  };

  beforeEach(function () {
    git('init', '--quiet', '--initial-branch=main');
    commit(`Start the history\n\n${WHY}`);
    git('checkout', '--quiet', '-b', 'topic');
  });

  it('passes a subject of exactly 72 characters with a body, counting characters, not bytes', function () {
    commit(`${'x'.repeat(71)}≤\n\n${WHY}`);
    commit(`Second change\n\n${WHY}\n\nMore lines.\n`);
    const { status, out } = check();
    assert.equal(status, 0, out);
    assert.match(out, /^2 commits in main\.\.HEAD: every message/);
  });

  it('fails a subject of 73 characters, naming the commit and its length', function () {
    commit(`Fine\n\n${WHY}`);
    const long = commit(`${'y'.repeat(73)}\n\n${WHY}`);
    const { status, out } = check();
    assert.equal(status, 1, out);
    assert.match(out, new RegExp(`^${long} y{73}\\n  the subject has 73 characters, more than 72\\n`, 'm'));
    assert.match(out, /^1 of 2 commits in main\.\.HEAD break the rules/m);
  });

  it('fails a commit without a body, and one whose body follows the subject without a blank line', function () {
    const bare = commit('Subject only');
    const glued = commit(`Subject\n${WHY}`);
    const { status, out } = check();
    assert.equal(status, 1, out);
    assert.match(out, new RegExp(`^${bare} Subject only\\n  there is no body saying why$`, 'm'));
    assert.match(out, new RegExp(`^${glued} Subject\\n  the subject is not followed by a blank line$`, 'm'));
    assert.match(out, /^2 of 2 commits/m);
  });

  it('checks the range it is given, and leaves merge commits out', function () {
    const first = git('rev-parse', 'HEAD');
    commit('No body here');
    git('checkout', '--quiet', 'main');
    commit(`On main\n\n${WHY}`);
    git('merge', '--quiet', '--no-ff', '--no-edit', 'topic');
    // main..HEAD is empty now; the merge itself (a one-line message from git) is not counted.
    assert.equal(check().status, 0);
    const { status, out } = check(`${first}..HEAD`);
    assert.equal(status, 1, out);
    assert.match(out, /there is no body saying why/);
    assert.match(out, /^1 of 2 commits in /m);
  });

  it("exits 2 with git's reason when the range does not exist", function () {
    const { status, out } = check('nosuch..HEAD');
    assert.equal(status, 2);
    assert.match(out, /git cannot read the range nosuch\.\.HEAD: .*bad revision/);
  });
});
