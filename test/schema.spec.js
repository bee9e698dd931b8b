// The one option schema (lib/core/schema.ts): the library, the CLI, the server, the remote queue and the worker take
// their keys and bounds from it, so that each refuses the same value with the same code, and follows a change of it.
'use strict';
const assert = require('node:assert/strict');
const { schema, options, remoteQueue, remoteWorker, serverRequest, cliGenerate } = require('../dist/internal');

const ctx = { vaeScaleFactor: 8, adapters: [], fused: false };
const sizes = { min: 256, max: 2048, step: 32, multipleOf: 8, defaultWidth: 512, defaultHeight: 512 };
/**
 * The server's handling of a body with each of its backends' checks (the library's, given the server's policy): read
 * it, then check its call; HttpError 400 when either refuses it.
 */
const serverBackends = {
  local: (r) => options.checkGenerate(r.prompt, r.options, { ...ctx, policy: serverRequest.SERVER_POLICY }),
  redis: (r) => remoteQueue.checkEnqueue(r.prompt, r.options, serverRequest.SERVER_POLICY),
};
function serve(body, backend = 'local') {
  const r = serverRequest.parseGeneration({ prompt: 'a cat', ...body }, new Map(), sizes, undefined);
  serverRequest.checkRequest(() => serverBackends[backend](r));
  return r;
}
/** The numeric options, with the server field and the CLI flag that stand for each (where there is one). */
const NUMERIC = [
  { key: 'seed', field: 'seed', flag: 'seed' },
  { key: 'steps', field: 'steps', flag: 'steps' },
  { key: 'numImages', field: 'n', flag: 'n' },
  { key: 'guidanceScale', field: 'guidance_scale', flag: 'guidance' },
  { key: 'maxSequenceLength' },
];

/** How each surface takes one option's value: throws (or rejects) when it refuses it. */
const surfaces = {
  library: (key, value) => options.checkGenerate('a cat', { [key]: value }, ctx),
  remote: (key, value) => remoteQueue.checkEnqueue('a cat', { [key]: value }),
};

async function refusal(run) {
  try {
    await run();
  } catch (err) {
    return err;
  }
  assert.fail('the value was accepted');
}

describe('the option schema', function () {
  it('gives the keys of generate, of image calls and of remote jobs', function () {
    const all = Object.keys(schema.OPTIONS);
    assert.deepEqual([...schema.GENERATE_KEYS].sort(), all.filter((k) => k !== 'strength').sort());
    assert.deepEqual([...schema.IMAGE_KEYS].sort(), all.filter((k) => k !== 'width' && k !== 'height').sort());
    // A remote job carries generate's options but for what lives in the caller's process.
    assert.deepEqual([...schema.REMOTE_KEYS, ...schema.LOCAL_KEYS, 'output'].sort(), [...schema.GENERATE_KEYS].sort());
    for (const run of Object.values(surfaces)) {
      assert.throws(() => run('stpes', 1), { code: 'ERR_INVALID_ARGUMENT', message: /did you mean "steps"/ });
    }
  });

  for (const { key, field, flag } of NUMERIC) {
    const { min, max } = schema.bounds(key);
    const over = key === 'guidanceScale' ? max + 0.5 : max + 1;
    const range = new RegExp(`from ${min} to ${max}\\b`);

    it(`${key}: the library and the remote queue take ${max} and refuse ${over} with ERR_INVALID_ARGUMENT`, function () {
      for (const [name, run] of Object.entries(surfaces)) {
        assert.doesNotThrow(() => run(key, max), `${name} refused ${max}`);
        assert.throws(() => run(key, over), { code: 'ERR_INVALID_ARGUMENT', message: range }, name);
      }
    });

    if (flag) {
      it(`${key}: the CLI's --${flag} takes ${max} and refuses ${over} (exit 2)`, async function () {
        const bad = await refusal(() =>
          cliGenerate.generateCommand('a cat', { [flag]: String(over), model: '/nonexistent' }),
        );
        assert.equal(bad.name, 'UsageError');
        assert.match(bad.message, range);
        // The bound itself passes the command line's checks: the command goes on to read the model.
        const good = await refusal(() =>
          cliGenerate.generateCommand('a cat', { [flag]: String(max), model: '/nonexistent' }),
        );
        assert.equal(good.code, 'ERR_MODEL_NOT_FOUND', good.message);
      });
    }

    if (field) {
      it(`${key}: the server's ${field} refuses ${over} with 400 ERR_INVALID_ARGUMENT`, function () {
        for (const backend of Object.keys(serverBackends)) {
          assert.throws(
            () => serve({ [field]: over }, backend),
            {
              status: 400,
              code: 'ERR_INVALID_ARGUMENT',
              message: new RegExp(`for ${field} but`),
            },
            backend,
          );
        }
      });
    }
  }

  it("the server and the worker default to the service limits, which the worker may raise up to the library's", async function () {
    const { steps, numImages } = schema.SERVICE_LIMITS;
    for (const backend of Object.keys(serverBackends)) {
      assert.equal(serve({ steps }, backend).options.steps, steps);
      const refuses = (body, max) =>
        assert.throws(() => serve(body, backend), { status: 400, message: new RegExp(`from 1 to ${max}\\b`) }, backend);
      refuses({ steps: steps + 1 }, steps);
      refuses({ n: numImages + 1 }, numImages);
    }
    for (const [option, key] of [
      ['maxSteps', 'steps'],
      ['maxImages', 'numImages'],
    ]) {
      const { max } = schema.bounds(key);
      const err = await refusal(() =>
        remoteWorker.startWorker({ redis: 'redis://127.0.0.1:1', model: '/nonexistent', [option]: max + 1 }),
      );
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
      assert.match(err.message, new RegExp(`from 1 to ${max} for options\\.${option}\\b`));
    }
  });

  it('checks a prompt of each kind with the same bound', function () {
    const long = 'x'.repeat(schema.MAX_PROMPT + 1);
    for (const run of Object.values(surfaces)) {
      for (const key of schema.PROMPT_KEYS) {
        assert.throws(() => run(key, long), {
          code: 'ERR_INVALID_ARGUMENT',
          message: new RegExp(`at most ${schema.MAX_PROMPT} characters for options\\.${key}`),
        });
      }
    }
    assert.throws(() => remoteQueue.checkEnqueue(long, {}), { code: 'ERR_INVALID_ARGUMENT', message: /for prompt/ });
    assert.throws(() => options.checkGenerate(long, {}, ctx), { code: 'ERR_INVALID_ARGUMENT', message: /for prompt/ });
  });
});
