#!/usr/bin/env node
// Checks the commit messages of a range against CONTRIBUTING.md: a subject of at most 72 characters, then a blank
// line, then a body that says why. Merge commits are left out (git writes their messages).
//
//   node scripts/check-commits.mjs [range]    range: a git revision range, by default origin/main..HEAD (or
//                                             main..HEAD where there is no origin/main)
//
// Prints one line per problem and exits 1 if there is any, 0 if there is none, 2 if git cannot read the range.
import { execFileSync } from 'node:child_process';

const MAX_SUBJECT = 72;

function git(args) {
  return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function defaultRange() {
  for (const base of ['origin/main', 'main']) {
    try {
      git(['rev-parse', '--verify', '--quiet', `${base}^{commit}`]);
      return `${base}..HEAD`;
    } catch {
      // not there: try the next one
    }
  }
  return 'HEAD';
}

/** The problems of one commit message, as sentences; none when it follows the rules. */
function problems(message) {
  const lines = message.replace(/\s+$/, '').split('\n');
  const subject = lines[0];
  const found = [];
  // Characters, not bytes or UTF-16 units: a subject may hold "≤" or "×".
  const length = [...subject].length;
  if (subject.trim() === '') found.push('the subject is empty');
  if (length > MAX_SUBJECT) found.push(`the subject has ${length} characters, more than ${MAX_SUBJECT}`);
  if (lines.length > 1 && lines[1].trim() !== '') found.push('the subject is not followed by a blank line');
  if (lines.slice(1).every((line) => line.trim() === '')) found.push('there is no body saying why');
  return found;
}

function main(argv) {
  const range = argv[0] ?? defaultRange();
  let log;
  try {
    // Each commit: its hash, a NUL, its raw message, a record separator.
    log = git(['log', '--no-merges', '--format=%H%x00%B%x1e', range, '--']);
  } catch (err) {
    console.error(`check-commits: git cannot read the range ${range}: ${String(err.stderr ?? err.message).trim()}`);
    return 2;
  }
  const commits = log
    .split('\x1e')
    .map((record) => record.replace(/^\n/, ''))
    .filter((record) => record !== '');
  let bad = 0;
  for (const record of commits) {
    const [hash, message] = record.split('\x00');
    const found = problems(message);
    if (found.length === 0) continue;
    bad += 1;
    console.log(`${hash.slice(0, 12)} ${message.split('\n')[0]}`);
    for (const problem of found) console.log(`  ${problem}`);
  }
  const checked = `${commits.length} commit${commits.length === 1 ? '' : 's'} in ${range}`;
  if (bad > 0) {
    console.log(`${bad} of ${checked} break the rules of CONTRIBUTING.md ("Commits")`);
    return 1;
  }
  console.log(`${checked}: every message has a subject of at most ${MAX_SUBJECT} characters and a body`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
