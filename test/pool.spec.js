// Concurrency (issue 7 §4): concurrent calls on one Pipeline queue and give their serial bytes; a PipelinePool of K
// independent pipelines serves concurrent calls with mixed adapters, each result byte-equal to the same call on one
// pipeline awaited alone; its queue, bound, aborts, borrowed output, adapter changes (all members or none) and
// dispose. Runs on the tiny SD 1.5 fixture.
'use strict';
const assert = require('node:assert/strict');
const { copyFileSync, readFileSync, readdirSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { Pipeline, PipelinePool, MultiloraError, DisposedError, AbortError } = require('../dist/index');
const { poolHooks, poolMembers } = require('../dist/internal').pool;
const { checkHooks } = require('../dist/internal').options;
const { families, meanAbsDiff, useTempDir } = require('./helpers/fixtures');

const fx = families.sd15;
const ADAPTERS = { a: { path: fx.lora('style-a') }, b: { path: fx.lora('style-b'), alpha: 0.8 } };
const BASE = { steps: 2, guidanceScale: fx.guidanceScale };
const PROMPT = 'a lighthouse';
/** Different seeds, adapters (none, one, a blend) and sizes, and a batch. */
const CALLS = [
  { seed: 1, adapters: null },
  { seed: 2, adapters: 'a' },
  { seed: 3, adapters: { a: 0.5, b: 0.7 }, width: 96 },
  { seed: 4, adapters: 'b', height: 96 },
  { seed: 5, width: 96, height: 32 },
  { seed: 6, adapters: { b: 0.3 } },
  { seed: 7, adapters: ['a', 'b'] },
  { seed: 8, adapters: 'a', numImages: 2 },
].map((c) => ({ ...BASE, ...c }));

/** The bytes of a result (one image or a batch), copied. */
const bytes = (result) => Buffer.concat((Array.isArray(result) ? result : [result]).map((image) => image.data));

async function serial(pipeline, calls) {
  const out = [];
  for (const call of calls) out.push(bytes(await pipeline.generate(PROMPT, call)));
  return out;
}

/** Resolves when `p` has settled, with 'pending' if it has not within a few turns of the event loop. */
async function state(p) {
  let s = 'pending';
  p.then(
    () => (s = 'resolved'),
    () => (s = 'rejected'),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return s;
}

describe('concurrency', function () {
  let reference;
  /** Serial bytes of CALLS on one pipeline, each call awaited before the next is made. */
  let expected;

  before(async function () {
    reference = await Pipeline.load(fx.model, { adapters: ADAPTERS });
    expected = await serial(reference, CALLS);
    assert.equal(new Set(expected.map((b) => b.toString('base64'))).size, CALLS.length, 'the calls should differ');
  });
  after(async function () {
    await reference?.dispose();
  });

  describe('one Pipeline', function () {
    it('queues concurrent calls, runs them one at a time in call order, and each gives its serial bytes', async function () {
      // On the pipeline that made the serial bytes, the calls are now made all at once, in another order than the
      // serial run: each must still give the bytes of that call.
      const order = CALLS.map((_, i) => CALLS.length - 1 - i);
      const events = [];
      const results = order.map((i) =>
        reference.generate(PROMPT, { ...CALLS[i], onProgress: ({ step }) => events.push([i, step]) }),
      );
      assert.equal(reference.pending, CALLS.length);
      const images = await Promise.all(results);
      order.forEach((i, k) =>
        assert.ok(bytes(images[k]).equals(expected[i]), `call ${i} differs from its serial bytes`),
      );
      // One at a time: every progress event of a call comes before the first of the next call.
      const runs = events.map(([i]) => i).filter((i, k, all) => k === 0 || all[k - 1] !== i);
      assert.deepEqual(runs, order, 'progress events of two calls interleaved, or calls ran out of order');
      assert.equal(reference.pending, 0);
    });
  });

  describe('PipelinePool', function () {
    const tmp = useTempDir('multilora-pool-');
    let pool;
    before(async function () {
      pool = await PipelinePool.load(fx.model, { size: 2, adapters: ADAPTERS });
    });
    after(async function () {
      await pool?.dispose();
      poolHooks.onMemberLoaded = undefined;
      poolHooks.onMemberChanged = undefined;
    });

    for (const size of [2, 3]) {
      it(`serves ${CALLS.length + 4} concurrent calls with mixed adapters on ${size} pipelines, each with its serial bytes`, async function () {
        const local = size === 2 ? pool : await PipelinePool.load(fx.model, { size, adapters: ADAPTERS });
        try {
          assert.equal(local.size, size);
          assert.deepEqual(local.adapters.names, ['a', 'b']);
          const order = [...CALLS.keys()].reverse().concat([1, 2, 3, 7]);
          const results = order.map((i) => local.generate(PROMPT, CALLS[i]));
          // The first `size` calls went to the idle members at once, one each; the others wait in the pool's queue.
          assert.equal(local.pending, order.length);
          assert.equal(local.waiting, order.length - size);
          assert.deepEqual(
            poolMembers(local).map((m) => m.pending),
            Array(size).fill(1),
          );
          const images = await Promise.all(results);
          order.forEach((i, k) =>
            assert.ok(bytes(images[k]).equals(expected[i]), `call ${i} (#${k}) differs from its serial bytes`),
          );
          assert.equal(local.pending, 0);
        } finally {
          if (local !== pool) await local.dispose();
        }
      });
    }

    it('runs imageToImage and inpaint as Pipeline does, with the same bytes', async function () {
      assert.ok(reference.defaults.imageInputs && pool.defaults.imageInputs);
      const image = { data: expected[0], width: 64, height: 64 };
      const mask = { data: Buffer.alloc(64 * 64).fill(255, 0, 64 * 32), width: 64, height: 64, channels: 1 };
      const options = { ...BASE, seed: 21, strength: 0.7, adapters: { a: 0.6, b: 0.4 } };
      const want = [
        bytes(await reference.imageToImage(PROMPT, image, options)),
        bytes(await reference.inpaint(PROMPT, image, mask, options)),
      ];
      const got = await Promise.all([
        pool.imageToImage(PROMPT, image, options),
        pool.inpaint(PROMPT, image, mask, options),
        pool.inpaint(PROMPT, image, mask, options),
        pool.imageToImage(PROMPT, image, options),
      ]);
      [0, 1, 1, 0].forEach((w, k) => assert.ok(bytes(got[k]).equals(want[w]), `call ${k}`));
      await assert.rejects(
        pool.inpaint(PROMPT, image, { ...mask, width: 32, data: mask.data.subarray(0, 32 * 64) }, options),
        (e) => e.code === 'ERR_INVALID_ARGUMENT',
      );
    });

    it('checks a call once (not again on the member that runs it), as a single Pipeline does', async function () {
      const image = { data: expected[0], width: 64, height: 64 };
      const mask = { data: Buffer.alloc(64 * 64).fill(255), width: 64, height: 64, channels: 1 };
      const options = { ...BASE, seed: 22, adapters: { a: 0.6 } };
      const checks = async (run) => {
        let count = 0;
        checkHooks.onCheck = () => (count += 1);
        try {
          await run();
        } finally {
          checkHooks.onCheck = undefined;
        }
        return count;
      };
      for (const target of [reference, pool]) {
        assert.equal(await checks(() => target.generate(PROMPT, options)), 1);
        assert.equal(await checks(() => target.imageToImage(PROMPT, image, options)), 1);
        assert.equal(await checks(() => target.inpaint(PROMPT, image, mask, options)), 1);
      }
    });

    it('checks its arguments with the messages of Pipeline', async function () {
      const bad = [
        [5, {}],
        [PROMPT, { seed: -1 }],
        [PROMPT, { width: 33 }],
        [PROMPT, { adapters: 'nope' }],
        [PROMPT, { adapters: { a: Number.NaN } }],
        [PROMPT, { sed: 1 }],
        [PROMPT, { signal: 'stop' }],
        [PROMPT, { output: 'lend' }],
        [PROMPT, null],
      ];
      for (const [prompt, options] of bad) {
        const fromPipeline = await reference.generate(prompt, options).then(
          () => assert.fail('accepted'),
          (e) => e,
        );
        const fromPool = await pool.generate(prompt, options).then(
          () => assert.fail('accepted'),
          (e) => e,
        );
        assert.ok(fromPool instanceof MultiloraError);
        assert.equal(fromPool.code, 'ERR_INVALID_ARGUMENT');
        assert.equal(fromPool.message, fromPipeline.message);
        assert.match(fromPool.message, /^Expected .* for .* but received |^Unknown /);
      }
      const loads = [
        [[fx.model, { size: 0 }], 'Expected an integer from 1 to 64 for options.size but received 0'],
        [[fx.model, { size: 1.5 }], 'Expected an integer from 1 to 64 for options.size but received 1.5'],
        [[fx.model, {}], 'Expected an integer from 1 to 64 for options.size but received undefined'],
        [
          [fx.model, { size: 2, maxQueue: -1 }],
          /^Expected an integer from 0 to \d+ for options.maxQueue but received -1$/,
        ],
        [[fx.model, { size: 2, onWarning: 1 }], 'Expected a function for options.onWarning but received 1'],
        [[fx.model], 'Expected an object for options but received undefined'],
        [['', { size: 1 }], 'Expected a non-empty string for modelDir but received ""'],
        [[fx.model, { size: 1, mode: 'fast' }], 'Expected "dynamic" or "fuse" for options.mode but received "fast"'],
        [[fx.model, { size: 1, sise: 2 }], /^Unknown option "sise" in the load options/],
      ];
      for (const [args, message] of loads) {
        await assert.rejects(PipelinePool.load(...args), (e) => {
          assert.equal(e.code, 'ERR_INVALID_ARGUMENT');
          if (typeof message === 'string') assert.equal(e.message, message);
          else assert.match(e.message, message);
          return true;
        });
      }
      // Still serving, with the right bytes.
      assert.ok(bytes(await pool.generate(PROMPT, CALLS[2])).equals(expected[2]));
    });

    it('passes onProgress through, and aborts a call while it waits (at once) or while it runs', async function () {
      const long = { ...CALLS[1], steps: 30 };
      const events = [];
      const running = [
        pool.generate(PROMPT, { ...long, onProgress: (e) => events.push(e) }),
        pool.generate(PROMPT, long),
      ];
      const waiting = new AbortController();
      const queued = pool.generate(PROMPT, { ...CALLS[0], signal: waiting.signal });
      assert.equal(pool.waiting, 1);
      waiting.abort(new Error('not wanted'));
      await assert.rejects(
        queued,
        (e) => e instanceof AbortError && e.code === 'ERR_ABORTED' && e.cause.message === 'not wanted',
      );
      assert.equal(pool.waiting, 0);
      assert.equal(await state(running[0]), 'pending', 'the running calls should go on');
      await Promise.all(running);
      // Events may be dropped when JS falls behind, never reordered. (PNDM counts one step more than asked.)
      assert.ok(events.length > 0);
      const total = events[0].total;
      assert.ok(total >= 30);
      assert.ok(
        events.every(
          (e, i) => e.total === total && e.step >= 1 && e.step <= total && (i === 0 || e.step > events[i - 1].step),
        ),
      );

      const stop = new AbortController();
      const aborted = pool.generate(PROMPT, {
        ...long,
        signal: stop.signal,
        onProgress: ({ step }) => step === 2 && stop.abort(),
      });
      await assert.rejects(aborted, (e) => e.code === 'ERR_ABORTED');
      await assert.rejects(
        pool.generate(PROMPT, { ...CALLS[0], signal: AbortSignal.abort() }),
        (e) => e.code === 'ERR_ABORTED',
      );
      const after = await Promise.all(CALLS.slice(0, 4).map((c) => pool.generate(PROMPT, c)));
      after.forEach((image, i) => assert.ok(bytes(image).equals(expected[i]), `call ${i} after the aborts`));
    });

    it('rejects a call beyond maxQueue with ERR_BUSY at once, and serves the others', async function () {
      const bounded = await PipelinePool.load(fx.model, { size: 1, maxQueue: 1, adapters: ADAPTERS });
      try {
        const accepted = [0, 1].map((i) => bounded.generate(PROMPT, CALLS[i]));
        assert.equal(bounded.waiting, 1);
        await assert.rejects(
          bounded.generate(PROMPT, CALLS[3]),
          (e) => e instanceof MultiloraError && e.code === 'ERR_BUSY' && /maxQueue 1/.test(e.message),
        );
        (await Promise.all(accepted)).forEach((image, i) => assert.ok(bytes(image).equals(expected[i])));
        // Free again: the call that was turned away now runs.
        assert.ok(bytes(await bounded.generate(PROMPT, CALLS[3])).equals(expected[3]));
      } finally {
        await bounded.dispose();
      }
    });

    it('lends a borrowed image until the next turn of the event loop, even with calls queued behind it', async function () {
      const calls = [1, 2, 3, 6, 0, 4];
      const seen = await Promise.all(
        calls.map((i) =>
          pool.generate(PROMPT, { ...CALLS[i], output: 'borrow' }).then(async (image) => {
            // In the same turn of the event loop, through as many promise hops as async wrappers would add: still
            // the bytes, although the next queued call is about to start on this member.
            for (let hop = 0; hop < 20; hop += 1) await null;
            const ok = image.data.length > 0 && image.data.equals(expected[i]);
            return { ok, image };
          }),
        ),
      );
      seen.forEach(({ ok }, k) => assert.ok(ok, `borrowed call ${calls[k]} was not intact right after its await`));
      // Later, the members have started other calls (or not): a borrowed buffer is detached or intact, never changed.
      for (const [k, { image }] of seen.entries()) {
        assert.ok(
          image.data.length === 0 || image.data.equals(expected[calls[k]]),
          `borrowed call ${calls[k]} changed`,
        );
      }
    });

    it('adds and removes an adapter on every member; the bytes are those of a pipeline with that set', async function () {
      const c = { path: fx.lora('style-a'), alpha: 0.6, template: 'c <subject>' };
      await reference.adapters.add('c', c);
      try {
        const withC = [
          { ...BASE, seed: 11, adapters: 'c' },
          { ...BASE, seed: 12, adapters: { b: 0.5, c: 0.9 } },
          { ...BASE, seed: 13, adapters: 'c', applyTemplate: true },
        ];
        const want = await serial(reference, withC);
        await pool.adapters.add('c', c);
        assert.deepEqual(pool.adapters.names, ['a', 'b', 'c']);
        assert.equal(pool.adapters.get('c').alpha, 0.6);
        for (const m of poolMembers(pool)) assert.deepEqual(m.adapters.names, ['a', 'b', 'c']);
        // Two at a time: each call of a pair runs on another member.
        for (let i = 0; i < withC.length; i += 1) {
          const pair = await Promise.all([pool.generate(PROMPT, withC[i]), pool.generate(PROMPT, withC[i])]);
          for (const image of pair) assert.ok(bytes(image).equals(want[i]), `call ${i} with c`);
        }
      } finally {
        await reference.adapters.remove('c');
      }
      await pool.adapters.remove('c');
      for (const m of poolMembers(pool)) assert.deepEqual(m.adapters.names, ['a', 'b']);
      await assert.rejects(
        pool.adapters.remove('c'),
        (e) => e.code === 'ERR_INVALID_ARGUMENT' && e.message === 'Unknown adapter "c"; registered: "a", "b"',
      );
      await assert.rejects(pool.generate(PROMPT, { ...BASE, adapters: 'c' }), (e) => e.code === 'ERR_INVALID_ARGUMENT');
      const back = await Promise.all(CALLS.map((call) => pool.generate(PROMPT, call)));
      back.forEach((image, i) => assert.ok(bytes(image).equals(expected[i]), `call ${i} after the remove`));
    });

    it('changes the adapters of all members or of none', async function () {
      // A bad adapter fails on the first member: nothing was rebuilt anywhere.
      await assert.rejects(
        pool.adapters.add('bad', { path: fx.lora('wrong-base') }),
        (e) => e.code === 'ERR_ADAPTER_INCOMPATIBLE',
      );
      const rebuilds = poolMembers(pool).map((m) => m.rebuilds);

      // A file that breaks after the first member read it: the first member is brought back, in its order.
      const file = path.join(tmp(), 'swapped.safetensors');
      const breakFile = () => writeFileSync(file, Buffer.from('not a safetensors file'));
      poolHooks.onMemberChanged = (member) => member === poolMembers(pool)[0] && breakFile();
      try {
        for (const [name, spec] of [
          ['c', {}],
          ['a', { alpha: 0.4 }],
        ]) {
          copyFileSync(fx.lora('style-b'), file);
          await assert.rejects(
            pool.adapters.add(name, { ...spec, path: file }),
            (e) => e.code === 'ERR_ADAPTER_INVALID',
            name,
          );
          assert.deepEqual(pool.adapters.names, ['a', 'b']);
          assert.equal(pool.adapters.get('a').alpha, 1);
          for (const m of poolMembers(pool)) {
            assert.deepEqual(m.adapters.names, ['a', 'b'], `${name}: a member kept the change`);
            assert.equal(m.adapters.get('a').path, ADAPTERS.a.path);
          }
        }
      } finally {
        poolHooks.onMemberChanged = undefined;
      }
      // The first member was changed and brought back (rebuilt), the second never changed.
      const now = poolMembers(pool).map((m) => m.rebuilds);
      assert.ok(now[0] > rebuilds[0]);
      assert.equal(now[1], rebuilds[1]);
      // Both give the bytes of the original set, blends (which depend on the order of registration) included.
      for (const i of [2, 6, 7, 1]) {
        const pair = await Promise.all([pool.generate(PROMPT, CALLS[i]), pool.generate(PROMPT, CALLS[i])]);
        for (const image of pair) assert.ok(bytes(image).equals(expected[i]), `call ${i} after the failed changes`);
      }
    });

    it('disposes the members already loaded when one fails to load', async function () {
      const file = path.join(tmp(), 'breaks.safetensors');
      copyFileSync(fx.lora('style-a'), file);
      const loaded = [];
      poolHooks.onMemberLoaded = (member) => {
        loaded.push(member);
        writeFileSync(file, Buffer.alloc(4)); // the next member reads a broken file
      };
      try {
        await assert.rejects(
          PipelinePool.load(fx.model, { size: 3, adapters: { a: { path: file } } }),
          (e) => e.code === 'ERR_ADAPTER_INVALID',
        );
      } finally {
        poolHooks.onMemberLoaded = undefined;
      }
      assert.equal(loaded.length, 1);
      assert.ok(loaded[0].disposed, 'the loaded member was not disposed');
      await assert.rejects(loaded[0].generate(PROMPT, BASE), DisposedError);
    });

    it('dispose waits for queued calls, then every later call rejects with ERR_DISPOSED', async function () {
      const local = await PipelinePool.load(fx.model, { size: 1, adapters: ADAPTERS });
      const members = poolMembers(local);
      const queued = [0, 3, 5].map((i) => local.generate(PROMPT, CALLS[i]));
      const disposing = local.dispose();
      assert.equal(local.disposed, true);
      assert.equal(local[Symbol.asyncDispose]() instanceof Promise, true);
      assert.equal(local.dispose(), disposing);
      await assert.rejects(
        local.generate(PROMPT, CALLS[0]),
        (e) =>
          e instanceof DisposedError && e.code === 'ERR_DISPOSED' && e.message === 'The pipeline pool was disposed',
      );
      await assert.rejects(local.adapters.add('c', ADAPTERS.a), DisposedError);
      await assert.rejects(local.adapters.remove('a'), DisposedError);
      (await Promise.all(queued)).forEach((image, k) => assert.ok(bytes(image).equals(expected[[0, 3, 5][k]])));
      await disposing;
      assert.ok(members.every((m) => m.disposed));
      assert.equal(local.pending, 0);
    });
  });
});

/** CPU ticks of each thread of this process alive now (utime + stime, from /proc). */
function threadTicks() {
  const out = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, Number(fields[11]) + Number(fields[12]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/**
 * Runs `call` on `pipeline` and returns the share of the process's CPU time spent on OpenVINO's own worker threads
 * (threads alive before and after, but not the JS thread; a generation's own thread ends with it).
 */
async function workerShare(pipeline, call) {
  const before = threadTicks();
  const cpu = process.cpuUsage();
  await pipeline.generate(PROMPT, call);
  const used = process.cpuUsage(cpu);
  const after = threadTicks();
  let workers = 0;
  for (const [tid, ticks] of after) {
    if (tid !== String(process.pid) && before.has(tid)) workers += ticks - before.get(tid);
  }
  const total = ((used.user + used.system) / 1e6) * 100; // clock ticks at 100 Hz
  return workers / total;
}

describe('options.precision: the precision OpenVINO computes in', function () {
  it('is checked like the other load options', async function () {
    for (const bad of ['fp32', 'F32', 32, null]) {
      await assert.rejects(
        Pipeline.load(fx.model, { precision: bad }),
        (e) =>
          e instanceof MultiloraError &&
          e.code === 'ERR_INVALID_ARGUMENT' &&
          /"f32", "bf16" or "f16" for options\.precision but received/.test(e.message),
      );
    }
  });
  // What 'f32' does is tested in lora-format-pipeline.spec.js: a LoHa gives its full-rank twin's very bytes.
});

describe('options.dynamicQuantizationGroupSize: how the CPU quantizes activations for int8 weights', function () {
  it('is checked like the other load options', async function () {
    for (const bad of [-1, 1.5, '128', 65537, null]) {
      await assert.rejects(
        Pipeline.load(fx.model, { dynamicQuantizationGroupSize: bad }),
        (e) =>
          e instanceof MultiloraError &&
          e.code === 'ERR_INVALID_ARGUMENT' &&
          /an integer from 0 to 65536 for options\.dynamicQuantizationGroupSize but received/.test(e.message),
      );
    }
  });
  it("leaves a model with float weights as it is: the default's bytes", async function () {
    const call = { ...BASE, seed: 5 };
    const plain = await Pipeline.load(fx.model);
    const grouped = await Pipeline.load(fx.model, { dynamicQuantizationGroupSize: 128 });
    try {
      assert.ok((await grouped.generate(PROMPT, call)).data.equals((await plain.generate(PROMPT, call)).data));
    } finally {
      await Promise.all([plain.dispose(), grouped.dispose()]);
    }
  });
  // What it does on int8 weights: test/bench-tutorial.spec.js (fast mode's bytes differ from int8 weights alone).
});

describe('options.threads: OpenVINO threads per pipeline', function () {
  it("runs inference on that many threads: with 1, none of OpenVINO's workers; nearly the same image", async function () {
    const one = await Pipeline.load(fx.model, { threads: 1 });
    const all = await Pipeline.load(fx.model);
    try {
      const call = { ...BASE, seed: 3, steps: 12 };
      await one.generate(PROMPT, { ...call, steps: 2 }); // compiled lazily: not in the measure
      await all.generate(PROMPT, { ...call, steps: 2 });
      const shareAll = await workerShare(all, call);
      const shareOne = await workerShare(one, call);
      // With one thread OpenVINO runs the inference on the calling thread; with every core, on its workers too.
      assert.ok(shareAll > 0.2, `${shareAll.toFixed(2)} of the CPU time on OpenVINO's workers with every core`);
      assert.ok(shareOne < 0.1, `${shareOne.toFixed(2)} of the CPU time on OpenVINO's workers with threads: 1`);
      // OpenVINO splits sums by thread: the bytes may differ a little from a pipeline on every core.
      const reference = await all.generate(PROMPT, call);
      const image = await one.generate(PROMPT, call);
      const diff = meanAbsDiff(image.data, reference.data);
      assert.ok(diff < 1, `threads: 1 is ${diff} from the default on average`);
      assert.ok(image.data.equals((await one.generate(PROMPT, call)).data), 'threads: 1 is not reproducible');
    } finally {
      await Promise.all([one.dispose(), all.dispose()]);
    }
  });

  it('is checked like the other load options', async function () {
    for (const bad of [0, 1.5, -1, '2', 2000]) {
      await assert.rejects(
        Pipeline.load(fx.model, { threads: bad }),
        (e) =>
          e instanceof MultiloraError &&
          e.code === 'ERR_INVALID_ARGUMENT' &&
          /for options\.threads but received/.test(e.message),
      );
    }
  });
});
