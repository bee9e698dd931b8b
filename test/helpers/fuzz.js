// The fuzzer's generators and its two runs, shared by scripts/fuzz.mjs (which runs them in a child process, so that
// a crash is reported with its seed and input) and test/fuzz.spec.js.
//
// Everything is a function of (seed, phase, case index): case i of a run is the same whatever ran before it, so one
// case can be replayed alone (`node scripts/fuzz.mjs --seed S --only options:123`).
'use strict';
const { mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { Pipeline, MultiloraError, ERROR_CODES } = require('../..');
const { families } = require('./fixtures');

// ---------------------------------------------------------------------------------------------------------------
// Randomness

/** A 32-bit hash of some 32-bit integers: the seed of one case's generator. */
function mix(...ints) {
  let h = 0x811c9dc5;
  for (const x of ints) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** mulberry32: small, fast, and good enough to pick mutations. */
class Rng {
  constructor(seed) {
    this.state = seed >>> 0;
  }

  next() {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** 0 <= n < max. */
  int(max) {
    return Math.floor(this.next() * max);
  }

  /** min <= n <= max. */
  range(min, max) {
    return min + this.int(max - min + 1);
  }

  chance(p) {
    return this.next() < p;
  }

  pick(items) {
    return items[this.int(items.length)];
  }

  /** `pairs`: [weight, value]. */
  weighted(pairs) {
    const total = pairs.reduce((n, [w]) => n + w, 0);
    let r = this.next() * total;
    for (const [w, value] of pairs) {
      r -= w;
      if (r < 0) return value;
    }
    return pairs[pairs.length - 1][1];
  }
}

const PHASE = { options: 1, files: 2 };

function caseRng(seed, phase, index) {
  return new Rng(mix(seed, PHASE[phase], index));
}

// ---------------------------------------------------------------------------------------------------------------
// Hostile values

function thrower(what) {
  return () => {
    throw new Error(`fuzz: ${what} threw`);
  };
}

function deep(depth) {
  let v = {};
  for (let i = 0; i < depth; i += 1) v = { v };
  return v;
}

/** Objects whose every reflective operation throws, or a revoked one. */
function hostileProxy(rng) {
  const kind = rng.pick([
    'all',
    'get',
    'ownKeys',
    'getPrototypeOf',
    'getOwnPropertyDescriptor',
    'has',
    'revoked',
    'fake-array',
  ]);
  if (kind === 'revoked') {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return [`a revoked Proxy`, proxy];
  }
  if (kind === 'fake-array')
    return ['a Proxy of an array', new Proxy([16], { get: (t, k) => (k === 'length' ? 1e9 : t[k]) })];
  const traps = ['get', 'ownKeys', 'getPrototypeOf', 'getOwnPropertyDescriptor', 'has', 'set', 'defineProperty'];
  const handler = {};
  for (const trap of traps) if (kind === 'all' || kind === trap) handler[trap] = thrower(`the ${trap} trap`);
  return [`a Proxy whose ${kind} trap throws`, new Proxy({}, handler)];
}

/** [description, make()] pairs: values of every type, and edge values of numbers and strings. */
const NASTY = [
  ['NaN', () => NaN],
  ['Infinity', () => Infinity],
  ['-Infinity', () => -Infinity],
  ['-0', () => -0],
  ['0', () => 0],
  ['-1', () => -1],
  ['0.5', () => 0.5],
  ['1e-320', () => 1e-320],
  ['2**31', () => 2 ** 31],
  ['2**32', () => 2 ** 32],
  ['2**53', () => 2 ** 53],
  ['-(2**53)', () => -(2 ** 53)],
  ['Number.MAX_VALUE', () => Number.MAX_VALUE],
  ['1e21', () => 1e21],
  ['""', () => ''],
  ['"16"', () => '16'],
  ['"NaN"', () => 'NaN'],
  ['"\\u0000"', () => '\u0000'],
  ['a lone surrogate', () => '\ud800'],
  ['a 1,000,000-character string', () => 'x'.repeat(1_000_000)],
  ['16n', () => 16n],
  ['true', () => true],
  ['false', () => false],
  ['null', () => null],
  ['undefined', () => undefined],
  ['Symbol("fuzz")', () => Symbol('fuzz')],
  ['{}', () => ({})],
  ['[]', () => []],
  ['[16, 16]', () => [16, 16]],
  ['a sparse array', () => [, 'a']], // eslint-disable-line no-sparse-arrays
  ['new Number(16)', () => new Number(16)], // eslint-disable-line no-new-wrappers
  ['new String("a")', () => new String('a')], // eslint-disable-line no-new-wrappers
  ['{ valueOf: () => 16 }', () => ({ valueOf: () => 16 })],
  ['{ [Symbol.toPrimitive]: throws }', () => ({ [Symbol.toPrimitive]: thrower('toPrimitive') })],
  ['{ toString: throws, toJSON: throws }', () => ({ toString: thrower('toString'), toJSON: thrower('toJSON') })],
  ['() => {}', () => () => {}],
  ['a class', () => class {}],
  ['new Date(0)', () => new Date(0)],
  ['/x/', () => /x/],
  ['new Map([["a", 1]])', () => new Map([['a', 1]])],
  ['Buffer.alloc(4)', () => Buffer.alloc(4)],
  ['new Float32Array(4)', () => new Float32Array(4)],
  ['Object.create(null)', () => Object.create(null)],
  ['an object 10,000 deep', () => deep(10_000)],
  [
    'a cyclic object',
    () => {
      const o = {};
      o.self = o;
      return o;
    },
  ],
  ['Promise.resolve(16)', () => Promise.resolve(16)],
  ['new Error("x")', () => new Error('x')],
  [
    'an object with a throwing getter',
    () => Object.defineProperty({}, 'a', { get: thrower('a getter'), enumerable: true }),
  ],
  ['an aborted AbortSignal', () => AbortSignal.abort('fuzz')],
  ['{ aborted: true }', () => ({ aborted: true, addEventListener() {}, removeEventListener() {} })],
];

function nasty(rng) {
  if (rng.chance(0.12)) return hostileProxy(rng);
  const [what, make] = rng.pick(NASTY);
  return [what, make()];
}

// ---------------------------------------------------------------------------------------------------------------
// Option objects

/** The adapters of the options pipeline: a with a template, b without. */
const OPTION_ADAPTERS = {
  a: { path: families.sd15.lora('style-a'), alpha: 0.8, template: 'xray <subject>', negativePrompt: 'blurry' },
  b: { path: families.sd15.lora('style-b'), alpha: 0.5 },
};

/** Values near each option's limits: [valid ones (cheap), invalid ones]. */
const EDGES = {
  seed: [
    [0, 1, 2 ** 32 - 1, -0],
    [2 ** 32, -1, 0.5, 4294967295.5, 2 ** 53],
  ],
  width: [
    [2, 4, 6, 10, 14, 30],
    [0, 1, 3, 7, 8193, -16, 16.5, 1e6],
  ],
  height: [
    [2, 4, 6, 10, 14, 30],
    [0, 1, 3, 7, 8193, -16, 16.5, 1e6],
  ],
  steps: [
    [1, 2, 3],
    [0, 1001, -1, 1.5, 1e9],
  ],
  guidanceScale: [
    [0, 1, 1.0001, 100, 1e-7],
    [-0.001, 100.001],
  ],
  numImages: [
    [1, 2],
    [0, 17, -1, 1.5],
  ],
  maxSequenceLength: [
    [1, 77, 4096],
    [0, 4097, -1, 1.5],
  ],
  strength: [
    [0, 1, 0.5, 1e-9],
    [-0.01, 1.01],
  ],
  scheduler: [
    ['auto', 'lcm', 'ddim', 'euler', 'flow-match-euler', 'pndm', 'euler-ancestral'],
    ['AUTO', 'euler ', 'constructor', '__proto__', 'toString', ''],
  ],
  generator: [
    ['genai', 'torch'],
    ['Torch', '', 'constructor'],
  ],
  output: [
    ['copy', 'borrow'],
    ['COPY', 'share', ''],
  ],
  preview: [
    [true, false],
    [0, 1, 'true'],
  ],
  applyTemplate: [
    [true, false],
    [0, 'yes'],
  ],
  negativePrompt: [
    ['', 'blurry', 'x'.repeat(100_000)],
    ['x'.repeat(100_001), 42],
  ],
  prompt2: [['', 'a dog'], ['x'.repeat(100_001)]],
  prompt3: [['', 'a dog'], [3]],
  negativePrompt2: [['', 'low quality'], [['low']]],
  negativePrompt3: [['', 'low quality'], [null]],
  adapters: [
    [
      null,
      'a',
      'b',
      ['a'],
      ['a', 'b'],
      { a: 0.5 },
      { a: 1, b: -0.5 },
      {},
      [],
      { a: -100 },
      { b: 100 },
      Object.assign(Object.create(null), { a: 0.25 }),
    ],
    [
      'c',
      '',
      'A',
      ['a', 'a'],
      ['a', 1],
      { a: NaN },
      { a: Infinity },
      { a: '0.5' },
      { a: null },
      { a: 100.5 },
      { c: 1 },
      JSON.parse('{"__proto__": 1}'),
      { constructor: 1 },
      { toString: 1 },
      { hasOwnProperty: 1 },
      ['constructor'],
      ['__proto__'],
      new Map([['a', 1]]),
      Object.create({ a: 1 }),
      // eslint-disable-next-line no-sparse-arrays -- a hole, on purpose
      [, 'a'],
      new Array(3),
      'x'.repeat(300),
    ],
  ],
};

/** An edge value of `key`: mostly an invalid one. */
function edge(rng, key) {
  if (!EDGES[key]) return nasty(rng)[1];
  const [valid, bad] = EDGES[key];
  return copyValue(rng.pick(rng.chance(0.15) ? valid : bad));
}

const KEYS = Object.keys(EDGES);
const TYPOS = [
  'Width',
  'step',
  'seeds',
  'negative_prompt',
  'guidance_scale',
  'num_images',
  'adapter',
  'image',
  'mask',
  'callback',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '',
  'x'.repeat(10_000),
  'strength',
];
const PROMPTS = ['a cat', 'a lighthouse at dusk', '', 'x'.repeat(2000), 'ünïcödé 🐈 ', 'a\u0000b', '<subject>'];

function copyValue(v) {
  if (Array.isArray(v)) return v.slice();
  if (v && typeof v === 'object' && !(v instanceof Map))
    return Object.assign(Object.create(Object.getPrototypeOf(v)), v);
  return v;
}

function show(v) {
  try {
    return showValue(v);
  } catch {
    return 'a value that throws when looked at';
  }
}

function showValue(v) {
  if (typeof v === 'string') return v.length > 40 ? `a ${v.length}-character string` : JSON.stringify(v);
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (v instanceof Map) return 'a Map';
  if (Array.isArray(v)) {
    if (v.length > 10) return `an array of length ${v.length}`;
    return `[${Array.from({ length: v.length }, (_, i) => (i in v ? show(v[i]) : '<hole>')).join(', ')}]`;
  }
  if (v && typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    const keys = Object.keys(v);
    const body = `{ ${keys.map((k) => `${JSON.stringify(k)}: ${show(v[k])}`).join(', ')} }`;
    return proto === Object.prototype ? body : `${body} (prototype ${proto === null ? 'null' : 'not Object'})`;
  }
  return String(v);
}

/** After a run: the pipeline must still make its reference bytes (recorded in the run's summary `s`). */
async function checkReference(pipeline, reference, s, phase) {
  const after = await pipeline.generate('a reference', REFERENCE_CALL);
  s.referenceSame = Buffer.compare(after.data, reference.data) === 0;
  if (!s.referenceSame)
    s.failures.push({ phase, description: 'after the run', problem: 'the reference call made other bytes' });
}

/** A valid, cheap call: tiny sizes, 1 or 2 steps, a random subset of the other options. */
function validCall(rng) {
  const options = {
    seed: rng.int(2 ** 32),
    width: rng.pick([8, 16]),
    height: rng.pick([8, 16]),
    steps: rng.chance(0.9) ? 1 : 2,
    guidanceScale: rng.chance(0.9) ? rng.pick([0, 1]) : 7.5,
    // The fixture's own PNDM takes 2 steps or more (GenAI 2026.3 gets 1 wrong): Euler keeps a call at 1 step.
    scheduler: 'euler',
  };
  const maybe = (p, key, values) => {
    if (rng.chance(p)) options[key] = copyValue(rng.pick(values));
  };
  maybe(0.5, 'adapters', [null, 'a', 'b', ['a', 'b'], { a: 0.5 }, { a: 1, b: -0.5 }, {}, []]);
  maybe(0.15, 'negativePrompt', ['', 'blurry']);
  maybe(0.1, 'prompt2', ['a dog']);
  maybe(0.05, 'numImages', [1, 2]);
  maybe(0.15, 'scheduler', ['auto', 'lcm', 'ddim', 'euler', 'euler-ancestral']);
  maybe(0.15, 'generator', ['genai', 'torch']);
  maybe(0.1, 'output', ['copy', 'borrow']);
  maybe(0.1, 'preview', [true, false]);
  maybe(0.1, 'applyTemplate', [true, false]);
  maybe(0.05, 'maxSequenceLength', [77]);
  if (rng.chance(0.1)) options.onProgress = () => {};
  return { method: 'generate', prompt: rng.pick(PROMPTS), options };
}

/** Sets a property even where a getter of an earlier mutation stands. */
function set(o, key, value) {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** One mutation of a call: what it did, in words. */
function mutate(call, rng) {
  const { options } = call;
  const opts = () => (options && typeof options === 'object' ? options : null);
  const kind = rng.weighted([
    [34, 'edge'],
    [28, 'nasty'],
    [0.5, 'delete'],
    [7, 'unknown-key'],
    [5, 'getter-throws'],
    [1.5, 'getter-flips'],
    [0.5, 'symbol-key'],
    [0.5, 'non-enumerable'],
    [4, 'prompt'],
    [4, 'options-object'],
    [3, 'callback'],
    [3, 'signal'],
    [2, 'image-call'],
  ]);
  const o = opts();
  if (!o && kind !== 'prompt') return mutateWhole(call, rng);
  const key = rng.chance(0.9) ? rng.pick(KEYS) : rng.pick(['signal', 'onProgress']);
  switch (kind) {
    case 'edge': {
      const v = edge(rng, key);
      set(o, key, v);
      return `options.${key} = ${show(v)}`;
    }
    case 'nasty': {
      const [what, v] = nasty(rng);
      set(o, key, v);
      return `options.${key} = ${what}`;
    }
    case 'delete':
      delete o[key];
      return `delete options.${key}`;
    case 'unknown-key': {
      const typo = rng.pick(TYPOS);
      const [what, v] = rng.chance(0.5) ? ['16', 16] : nasty(rng);
      Object.defineProperty(o, typo, { value: v, enumerable: true, writable: true, configurable: true });
      return `options[${show(typo)}] = ${what} (an own property)`;
    }
    case 'getter-throws':
      Object.defineProperty(o, key, { get: thrower(`options.${key}`), enumerable: true, configurable: true });
      return `options.${key} is a getter that throws`;
    case 'getter-flips': {
      // Valid on the first read, something else after: a check that reads twice would let the second value through.
      const first = copyValue(rng.pick((EDGES[key] ?? [[undefined]])[0]));
      const [what, later] = nasty(rng);
      let reads = 0;
      Object.defineProperty(o, key, {
        get: () => (reads++ === 0 ? first : later),
        enumerable: rng.chance(0.7),
        configurable: true,
      });
      return `options.${key} is a getter: ${show(first)} on the first read, then ${what}`;
    }
    case 'symbol-key':
      set(o, Symbol('width'), 'not a width');
      return 'options[Symbol("width")] = "not a width"';
    case 'non-enumerable': {
      const v = edge(rng, key);
      Object.defineProperty(o, key, { value: v, enumerable: false, configurable: true });
      return `options.${key} = ${show(v)} (not enumerable)`;
    }
    case 'prompt': {
      const [what, v] = rng.chance(0.5)
        ? nasty(rng)
        : rng.pick([
            ['a 100,001-character prompt', 'x'.repeat(100_001)],
            ['a 100,000-character prompt', 'y'.repeat(100_000)],
            ['a lone surrogate', '\udc00'],
          ]);
      call.prompt = v;
      return `prompt = ${what}`;
    }
    case 'options-object':
      return mutateWhole(call, rng);
    case 'callback': {
      const which = rng.pick(['throws', 'throws a non-Error', 'returns a value', 'not a function']);
      if (which === 'throws') set(o, 'onProgress', thrower('onProgress'));
      else if (which === 'throws a non-Error') {
        set(o, 'onProgress', () => {
          throw Symbol('not an error');
        });
      } else if (which === 'returns a value') set(o, 'onProgress', () => 42);
      else set(o, 'onProgress', { call() {} });
      return `options.onProgress ${which}`;
    }
    case 'signal': {
      const which = rng.pick(['aborted', 'aborted with undefined', 'live', 'fake', 'an EventTarget']);
      const v =
        which === 'aborted'
          ? AbortSignal.abort(new Error('fuzz'))
          : which === 'aborted with undefined'
            ? AbortSignal.abort(undefined)
            : which === 'live'
              ? new AbortController().signal
              : which === 'fake'
                ? { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} }
                : new EventTarget();
      set(o, 'signal', v);
      return `options.signal = ${which}`;
    }
    case 'image-call': {
      call.method = rng.pick(['imageToImage', 'inpaint']);
      delete o.width;
      delete o.height;
      const strength = rng.chance(0.5) ? edge(rng, 'strength') : undefined;
      if (strength !== undefined) set(o, 'strength', strength);
      const [what, image] = rng.weighted([
        [4, ['a 16x16 RGB image', { data: Buffer.alloc(16 * 16 * 3, 128), width: 16, height: 16 }]],
        [1, ['a 16x16 image with too few bytes', { data: Buffer.alloc(16 * 16 * 3 - 1), width: 16, height: 16 }]],
        [1, ['a 15x16 image', { data: Buffer.alloc(15 * 16 * 3), width: 15, height: 16 }]],
        [1, ['a 16x16 image of 2 channels', { data: Buffer.alloc(16 * 16 * 2), width: 16, height: 16, channels: 2 }]],
        [1, ['a Buffer that is no PNG', Buffer.from('not a png')]],
        [1, nasty(rng)],
      ]);
      call.image = image;
      call.mask = rng.chance(0.8)
        ? { data: Buffer.alloc(16 * 16, 255), width: 16, height: 16, channels: 1 }
        : rng.pick([undefined, Buffer.alloc(3)]);
      return `${call.method}, image: ${what}${strength === undefined ? '' : `, strength ${show(strength)}`}`;
    }
    default:
      throw new Error(`unknown mutation ${kind}`);
  }
}

/** Replaces or wraps the whole options object: the last mutation of a call. */
function mutateWhole(call, rng) {
  call.final = true;
  const which = rng.weighted([
    [3, 'nasty'],
    [2, 'proxy'],
    [1, 'null-prototype'],
    [1, 'inherited'],
    [1, 'frozen'],
    [1, 'array'],
    [1, 'class'],
  ]);
  const o = call.options && typeof call.options === 'object' ? call.options : {};
  switch (which) {
    case 'nasty': {
      // Not an empty object: a call with every option at the model's default (50 steps, 64x64) costs seconds.
      let [what, v] = nasty(rng);
      while (/^\{\}$|^Object\.create\(null\)$|^a Proxy whose/.test(what)) [what, v] = nasty(rng);
      call.options = v;
      return `options = ${what}`;
    }
    case 'proxy': {
      const trap = rng.pick(['get', 'ownKeys', 'getPrototypeOf', 'getOwnPropertyDescriptor', 'has', 'none']);
      call.options = new Proxy(o, trap === 'none' ? {} : { [trap]: thrower(`the options' ${trap} trap`) });
      return `options = a Proxy of the options, ${trap === 'none' ? 'without traps' : `whose ${trap} trap throws`}`;
    }
    case 'null-prototype':
      call.options = Object.defineProperties(Object.create(null), Object.getOwnPropertyDescriptors(o));
      return 'options has a null prototype';
    case 'inherited':
      call.options = Object.create(o);
      return 'options = Object.create(options): every option inherited';
    case 'frozen':
      call.options = Object.freeze(o);
      return 'options is frozen';
    case 'array':
      call.options = Object.defineProperties([], Object.getOwnPropertyDescriptors(o));
      return 'options = an array with the options as properties';
    default: {
      class Options {}
      call.options = Object.defineProperties(new Options(), Object.getOwnPropertyDescriptors(o));
      return 'options = an instance of a class';
    }
  }
}

/** Case `index` of the options run: a call, mostly valid but for one or two fields. */
function optionsCase(seed, index) {
  const rng = caseRng(seed, 'options', index);
  const call = validCall(rng);
  const count = rng.weighted([
    [0.3, 0],
    [45, 1],
    [40, 2],
    [15, 3],
  ]);
  const mutations = [];
  for (let i = 0; i < count && !call.final; i += 1) mutations.push(mutate(call, rng));
  call.description = mutations.length ? mutations.join('; ') : 'valid';
  return call;
}

// ---------------------------------------------------------------------------------------------------------------
// Safetensors files

const SOURCES = [
  [3, 'sd15/style-a'],
  [1, 'sd15/style-b'],
  [3, 'sd15/style-a-peft'],
  [1, 'sd15/unmatched'],
  [1, 'sd15/wrong-base'],
  [1, 'sdxl/style-a'],
  [1, 'sdxl/style-a-peft'],
];

const sourceCache = new Map();

function source(name) {
  let bytes = sourceCache.get(name);
  if (!bytes) {
    const [family, lora] = name.split('/');
    bytes = readFileSync(families[family].lora(lora));
    sourceCache.set(name, bytes);
  }
  return bytes;
}

/** The file's header as ordered [key, value] entries, with its data section. */
function split(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  return { entries: Object.entries(header), data: bytes.subarray(8 + n) };
}

/** A file from header text and data; `claim` overrides the length field. */
function join(json, data, claim) {
  const text = Buffer.isBuffer(json) ? json : Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(claim ?? text.length));
  return Buffer.concat([prefix, text, data]);
}

function entriesJson(entries) {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${typeof v === 'string' && v.startsWith('RAW:') ? v.slice(4) : JSON.stringify(v)}`).join(',')}}`;
}

const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'f32', '', 'Q4_0'];
const BAD_JSON_NUMBERS = ['1e400', '-1', '1.5', '"4"', 'null', 'true', '[]', '{}', '9007199254740993', '1e21', '-0'];

/** One edit of the header's JSON, keeping the data as it is. */
function jsonEdit(bytes, rng) {
  const { entries, data } = split(bytes);
  const tensors = entries.filter(([k]) => k !== '__metadata__');
  const pickTensor = () => tensors[rng.int(tensors.length)];
  const kind = rng.weighted([
    [4, 'dtype'],
    [4, 'shape'],
    [5, 'offsets'],
    [3, 'name'],
    [2, 'duplicate'],
    [4, 'metadata'],
    [2, 'peft-metadata'],
    [2, 'entry'],
    [2, 'drop'],
    [1, 'top-level'],
    [1, 'whitespace'],
    [1, 'extra-field'],
  ]);
  let what = kind;
  switch (kind) {
    case 'dtype': {
      const t = pickTensor();
      const v = rng.chance(0.8) ? rng.pick(DTYPES) : rng.pick([null, 4, ['F32'], { dtype: 'F32' }]);
      t[1] = { ...t[1], dtype: v };
      what = `dtype of ${t[0]} = ${JSON.stringify(v)}`;
      break;
    }
    case 'shape': {
      const t = pickTensor();
      const shape = [...t[1].shape];
      const op = rng.pick(['dim', 'add', 'remove', 'raw', 'swap']);
      if (op === 'dim' && shape.length) {
        const i = rng.int(shape.length);
        shape[i] = rng.pick([0, 1, shape[i] + 1, shape[i] - 1, shape[i] * 2, 2 ** 32, 2 ** 53, 2 ** 64]);
        t[1] = { ...t[1], shape };
      } else if (op === 'add') {
        shape.splice(rng.int(shape.length + 1), 0, rng.pick([1, 2, 0]));
        t[1] = { ...t[1], shape };
      } else if (op === 'remove' && shape.length) {
        shape.splice(rng.int(shape.length), 1);
        t[1] = { ...t[1], shape };
      } else if (op === 'swap' && shape.length >= 2) {
        t[1] = { ...t[1], shape: [...shape].reverse() };
      } else {
        const raw = rng.pick([
          '[-1,4]',
          '[1.5]',
          '["4",32]',
          'null',
          '4',
          '[[4],32]',
          '[1e400]',
          '[]',
          '{}',
          `[${'1,'.repeat(5000)}1]`,
        ]);
        t[1] = `RAW:${JSON.stringify({ ...t[1], shape: 0 }).replace('"shape":0', `"shape":${raw}`)}`;
      }
      what = `shape of ${t[0]} (${op})`;
      break;
    }
    case 'offsets': {
      const t = pickTensor();
      const [b, e] = t[1].data_offsets;
      const op = rng.pick(['shift', 'swap', 'end', 'begin', 'other', 'raw', 'overlap']);
      let offsets = [b, e];
      if (op === 'shift') {
        const d = rng.pick([1, -1, 4, -4, 2, 8, 1000]);
        offsets = [b + d, e + d];
      } else if (op === 'swap') offsets = [e, b];
      else if (op === 'end') offsets = [b, rng.pick([e + 1, e - 1, data.length, data.length + 1, 2 ** 53, 2 ** 64])];
      else if (op === 'begin') offsets = [rng.pick([b + 1, b - 1, 0, -1, data.length]), e];
      else if (op === 'other' || op === 'overlap') {
        const o = pickTensor()[1].data_offsets;
        offsets = op === 'other' ? [...o] : [o[0] + 1, o[0] + 1 + (e - b)];
      }
      if (op === 'raw') {
        const raw = rng.pick(BAD_JSON_NUMBERS);
        const shape = rng.chance(0.5)
          ? `[${raw},${e}]`
          : rng.pick([`[${b}]`, `[${b},${e},${e}]`, 'null', `"${b},${e}"`, `{"0":${b},"1":${e}}`]);
        t[1] = `RAW:${JSON.stringify({ ...t[1], data_offsets: 0 }).replace('"data_offsets":0', `"data_offsets":${shape}`)}`;
      } else t[1] = { ...t[1], data_offsets: offsets };
      what = `data_offsets of ${t[0]} (${op})`;
      break;
    }
    case 'name': {
      const t = pickTensor();
      const old = t[0];
      const op = rng.pick(['char', 'suffix', 'empty', 'long', 'unicode', 'metadata', 'other-format', 'collide']);
      if (op === 'char' && old.length) {
        const i = rng.int(old.length);
        t[0] = old.slice(0, i) + rng.pick(['_', '.', 'x', '\u0000', 'é', '"']) + old.slice(i + 1);
      } else if (op === 'suffix')
        t[0] = old.replace(
          /\.(\w+)$/,
          rng.pick(['', '.weight', '.lora_mid.weight', '.hada_w1_a', '.dora_scale', '.diff', '.lora_A.bias']),
        );
      else if (op === 'empty') t[0] = '';
      else if (op === 'long') t[0] = `${old}${'x'.repeat(rng.pick([300, 100_000]))}`;
      else if (op === 'unicode') t[0] = old.replace('lora', '𝓁𝑜𝓇𝒶');
      else if (op === 'metadata') t[0] = '__metadata__';
      else if (op === 'other-format') {
        t[0] = old
          .replace(/^lora_unet_/, rng.pick(['unet.', 'transformer.', 'lora_te2_', 'double_blocks.0.']))
          .replace(/^unet\./, 'lora_unet_')
          .replace('lora_down.weight', rng.pick(['lora_A.weight', 'down.weight']))
          .replace('lora_A.weight', 'lora_down.weight');
      } else t[0] = pickTensor()[0];
      what = `name ${JSON.stringify(old.slice(0, 60))} -> ${JSON.stringify(t[0].slice(0, 60))} (${op})`;
      break;
    }
    case 'duplicate': {
      const t = pickTensor();
      const at = rng.int(entries.length + 1);
      entries.splice(at, 0, [t[0], rng.chance(0.5) ? t[1] : { ...t[1], dtype: 'F16' }]);
      what = `${t[0]} given twice`;
      break;
    }
    case 'metadata': {
      const m = entries.find(([k]) => k === '__metadata__');
      const v = rng.pick([
        null,
        [],
        'str',
        4,
        {},
        { a: 1 },
        { a: null },
        { a: { b: 'c' } },
        { a: 'x'.repeat(200_000) },
        { ss_network_alpha: 'NaN' },
        { ['__proto__']: 'x' },
        { format: 'pt' },
        { lora_adapter_metadata: '{' },
      ]);
      if (m) m[1] = v;
      else entries.unshift(['__metadata__', v]);
      if (rng.chance(0.2)) entries.push(['__metadata__', { second: 'one' }]);
      what = `__metadata__ = ${JSON.stringify(v)?.slice(0, 60)}`;
      break;
    }
    case 'peft-metadata': {
      const m = entries.find(([k]) => k === '__metadata__');
      let config = {};
      try {
        config = JSON.parse(m?.[1]?.lora_adapter_metadata ?? '{}');
      } catch {
        config = {};
      }
      const key = rng.pick([
        'unet.r',
        'unet.lora_alpha',
        'r',
        'lora_alpha',
        'unet.rank_pattern',
        'unet.alpha_pattern',
        'unet.use_dora',
        'unet.use_rslora',
        'text_encoder.r',
      ]);
      const value = rng.pick([
        0,
        -2,
        2,
        4,
        8,
        Infinity,
        'x',
        null,
        true,
        [4],
        { '.*': 2 },
        { to_q: 0 },
        { '(': 2 },
        { '(a+)+$': 3 },
        { '(.*)*x': 3 },
        { 'to_[': 8 },
        { '': 4 },
        { 'attn1.to_q': 'x' },
      ]);
      config[key] = value;
      const text = rng.chance(0.9) ? JSON.stringify(config) : rng.pick(['null', '[]', '"x"', '{"a":', 'NaN']);
      const meta = { ...(m?.[1] ?? {}), lora_adapter_metadata: text };
      if (m) m[1] = meta;
      else entries.unshift(['__metadata__', meta]);
      what = `lora_adapter_metadata ${key} = ${JSON.stringify(value)}`;
      break;
    }
    case 'entry': {
      const t = pickTensor();
      const v = rng.pick([
        null,
        4,
        'x',
        [],
        {},
        [t[1]],
        { dtype: t[1].dtype },
        { shape: t[1].shape, data_offsets: t[1].data_offsets },
      ]);
      t[1] = v;
      what = `entry of ${t[0]} = ${JSON.stringify(v)}`;
      break;
    }
    case 'drop': {
      const count = rng.chance(0.8) ? 1 : rng.range(2, tensors.length);
      for (let i = 0; i < count; i += 1) {
        const t = pickTensor();
        const at = entries.indexOf(t);
        if (at >= 0) entries.splice(at, 1);
      }
      what = `${count} tensor(s) dropped`;
      break;
    }
    case 'top-level': {
      const v = rng.pick([
        '[]',
        '"x"',
        '4',
        'null',
        '{}',
        '{"__metadata__":{}}',
        `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
        '{"a":{"b":'.repeat(10),
      ]);
      return [`header = ${v.slice(0, 40)}`, join(v, data)];
    }
    case 'whitespace': {
      const json = entriesJson(entries);
      const v = rng.pick([
        ` ${json}`,
        `${json}   `,
        `${json}\u0000\u0000`,
        `\ufeff${json}`,
        `${json}}`,
        `${json},`,
        json.replace(/:/g, ' : '),
      ]);
      return [`header padded or trailed (${JSON.stringify(v.slice(-3))})`, join(v, data)];
    }
    case 'extra-field': {
      const t = pickTensor();
      t[1] = {
        ...t[1],
        extra: rng.pick([1, 'x', null, { nested: [1, 2] }]),
        ...(rng.chance(0.3) ? { dtype: t[1].dtype } : {}),
      };
      what = `${t[0]} has an extra field`;
      break;
    }
    default:
      break;
  }
  return [`json: ${what}`, join(entriesJson(entries), data)];
}

/** One mutation of a whole file. */
function mutateFile(bytes, rng) {
  const n = Number(bytes.readBigUInt64LE(0));
  const headerEnd = 8 + n;
  const kind = rng.weighted([
    [30, 'json'],
    [12, 'header-bits'],
    [10, 'header-bytes'],
    [10, 'truncate'],
    [10, 'length'],
    [3, 'length-bits'],
    [0.7, 'data-bits'],
    [1, 'data-alpha'],
    [0.4, 'append'],
    [2, 'prepend'],
    [3, 'splice'],
    [2, 'tiny'],
  ]);
  const out = Buffer.from(bytes);
  switch (kind) {
    case 'json':
      return jsonEdit(bytes, rng);
    case 'header-bits': {
      const count = rng.range(1, 4);
      for (let i = 0; i < count; i += 1) out[8 + rng.int(n)] ^= 1 << rng.int(8);
      return [`${count} bit(s) flipped in the header`, out];
    }
    case 'header-bytes': {
      const count = rng.range(1, 3);
      for (let i = 0; i < count; i += 1) {
        const at = 8 + rng.int(n);
        const byte = rng.pick([
          0x22,
          0x7b,
          0x7d,
          0x5b,
          0x5d,
          0x2c,
          0x3a,
          0x00,
          0xff,
          0x5c,
          0x30,
          0x39,
          0x2d,
          rng.int(256),
        ]);
        out[at] = byte === out[at] ? byte ^ 0x01 : byte;
      }
      return [`${count} byte(s) overwritten in the header`, out];
    }
    case 'truncate': {
      const at = rng.weighted([
        [1, rng.int(8)],
        [3, 8 + rng.int(n)],
        [3, headerEnd + rng.int(bytes.length - headerEnd)],
        [1, bytes.length - 1],
      ]);
      return [`truncated to ${at} bytes`, out.subarray(0, at)];
    }
    case 'length': {
      const v = rng.pick([
        0n,
        BigInt(n - 1),
        BigInt(n + 1),
        BigInt(n + 8),
        BigInt(n - 8),
        BigInt(bytes.length),
        BigInt(bytes.length - 8),
        BigInt(bytes.length - 7),
        2n ** 63n,
        2n ** 64n - 1n,
        100n * 1024n * 1024n + 1n,
        BigInt(rng.int(bytes.length)),
      ]);
      out.writeBigUInt64LE(v, 0);
      return [`header length rewritten to ${v}`, out];
    }
    case 'length-bits': {
      const bit = rng.int(64);
      out[bit >> 3] ^= 1 << (bit & 7);
      return [`bit ${bit} of the header length flipped`, out];
    }
    case 'data-bits': {
      const count = rng.range(1, 16);
      for (let i = 0; i < count; i += 1) out[headerEnd + rng.int(bytes.length - headerEnd)] ^= 1 << rng.int(8);
      return [`${count} byte(s) changed in the data`, out];
    }
    case 'data-alpha': {
      // The value of an .alpha tensor: NaN, Infinity, 0, negative, huge.
      const { entries } = split(bytes);
      const alphas = entries.filter(([k]) => k.endsWith('.alpha'));
      if (!alphas.length) {
        out[8] ^= 0x20; // no .alpha (a PEFT file): break the header's first character instead
        return ["no .alpha to change: the header's first byte changed", out];
      }
      const [name, info] = rng.pick(alphas);
      const v = rng.pick([NaN, Infinity, -Infinity, 0, -4, 1e38, 3.4e38 * 10]);
      if (info.dtype === 'F32') out.writeFloatLE(v, headerEnd + info.data_offsets[0]);
      return [`${name} = ${v}`, out];
    }
    case 'append': {
      const garbage = Buffer.alloc(rng.pick([1, 7, 8, 1000, 65536]), rng.int(256));
      return [`${garbage.length} bytes appended`, Buffer.concat([out, garbage])];
    }
    case 'prepend':
      return ['8 bytes prepended', Buffer.concat([Buffer.alloc(8, rng.int(256)), out])];
    case 'splice': {
      const at = rng.int(bytes.length);
      const len = rng.range(1, 64);
      return [`${len} bytes cut at ${at}`, Buffer.concat([out.subarray(0, at), out.subarray(at + len)])];
    }
    default: {
      const v = rng.pick([
        Buffer.alloc(0),
        Buffer.alloc(8),
        Buffer.from('{}'),
        Buffer.from([2, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d]),
        Buffer.from([2, 0, 0, 0, 0, 0, 0, 0, 0x5b, 0x5d]),
      ]);
      return [`a tiny file of ${v.length} bytes`, v];
    }
  }
}

/** Case `index` of the files run: a fixture with one to three mutations, and how it goes to the pipeline. */
function fileCase(seed, index) {
  const rng = caseRng(seed, 'files', index);
  const sourceName = rng.weighted(SOURCES.map(([w, name]) => [w, name]));
  let bytes = source(sourceName);
  const mutations = [];
  const count = rng.weighted([
    [75, 1],
    [20, 2],
    [5, 3],
  ]);
  for (let i = 0; i < count; i += 1) {
    let what;
    try {
      [what, bytes] = mutateFile(bytes, rng);
    } catch {
      // An earlier mutation left no header that this one can edit: flip header bits instead.
      const out = Buffer.from(bytes);
      if (out.length) out[rng.int(out.length)] ^= 1 << rng.int(8);
      [what, bytes] = ['a bit flipped (the header no longer parses)', out];
    }
    mutations.push(what);
  }
  return {
    source: sourceName,
    bytes,
    description: `${sourceName}: ${mutations.join('; ')}`,
    via: rng.chance(0.5) ? 'adapters.add' : 'Pipeline.load',
    as: rng.chance(0.6) ? 'data' : 'path',
    scale: rng.chance(0.7) ? 'genai' : 'diffusers',
    seed: rng.int(2 ** 32),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Running

const CODES = new Set(ERROR_CODES);

/** Classifies what a call threw: a typed error with a known code, or a failure (returned as a message). */
function classify(err) {
  if (err instanceof MultiloraError && CODES.has(err.code)) return { code: err.code };
  let text;
  try {
    text = err instanceof Error ? `${err.name}: ${err.message}` : `a thrown ${typeof err}: ${String(err)}`;
  } catch {
    text = `a thrown ${typeof err}`;
  }
  return { failure: `not a MultiloraError: ${text}\n${err?.stack ?? ''}` };
}

function checkImages(result) {
  const images = Array.isArray(result) ? result : [result];
  if (!images.length) return 'an empty batch';
  for (const image of images) {
    if (!image || typeof image !== 'object') return `a result that is not an image: ${String(image)}`;
    const { width, height, data, channels, seed } = image;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
      return `an image of ${width}x${height}`;
    if (channels !== 3 || !Buffer.isBuffer(data) || data.length !== width * height * 3) {
      return `an image of ${width}x${height} with ${data?.length} bytes`;
    }
    if (!Number.isInteger(seed) || seed < 0 || seed > 2 ** 32 - 1) return `an image with seed ${seed}`;
  }
  return undefined;
}

/** A promise that rejects after `ms`, so that a hung call is a failure rather than a stalled run. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`fuzz: ${what} did not settle in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const REFERENCE_CALL = { seed: 42, width: 32, height: 32, steps: 2, adapters: { a: 0.7, b: 0.3 } };

function summary() {
  return { cases: 0, generated: 0, rejected: 0, codes: {}, failures: [], ms: 0 };
}

function count(s, code) {
  s.rejected += 1;
  s.codes[code] = (s.codes[code] ?? 0) + 1;
}

/**
 * The options run: `indices` calls on one sd15-tiny pipeline with two adapters. Before each case, `onCase` is told
 * which (so that a crash can name it). Returns a summary; the pipeline must still make its reference bytes after.
 */
async function runOptions(seed, indices, { onCase = () => {}, timeoutMs = 60_000, log = () => {}, record } = {}) {
  const s = summary();
  if (!indices.length) return s;
  const started = Date.now();
  const pipeline = await Pipeline.load(families.sd15.model, { adapters: OPTION_ADAPTERS, onWarning: () => {} });
  try {
    const reference = await pipeline.generate('a reference', REFERENCE_CALL);
    for (const index of indices) {
      if (s.cases > 0 && s.cases % 1000 === 0)
        log(`options: ${s.cases} cases, ${s.generated} generated, ${s.rejected} rejected`);
      onCase({ phase: 'options', index, description: '(being made)' });
      const call = optionsCase(seed, index);
      onCase({ phase: 'options', index, description: call.description });
      s.cases += 1;
      let result;
      try {
        const args =
          call.method === 'generate'
            ? [call.prompt, call.options]
            : call.method === 'imageToImage'
              ? [call.prompt, call.image, call.options]
              : [call.prompt, call.image, call.mask, call.options];
        result = await withTimeout(pipeline[call.method](...args), timeoutMs, `options case ${index}`);
      } catch (err) {
        const c = classify(err);
        if (c.code) count(s, c.code);
        else s.failures.push({ phase: 'options', index, description: call.description, problem: c.failure });
        if (c.code === 'ERR_GENAI')
          s.genai = [...(s.genai ?? []), { index, description: call.description, message: err.message.slice(0, 300) }];
        continue;
      }
      const bad = checkImages(result, call);
      if (bad)
        s.failures.push({ phase: 'options', index, description: call.description, problem: `resolved with ${bad}` });
      else s.generated += 1;
      record?.push(call.description);
    }
    await checkReference(pipeline, reference, s, 'options');
  } finally {
    await pipeline.dispose();
  }
  s.ms = Date.now() - started;
  return s;
}

/**
 * The files run: each mutated file is inspected (parseSafetensors, inspectLora), then registered, by
 * `pipeline.adapters.add` on one pipeline or by `Pipeline.load` of a new one. A file that loads is then used by a
 * generate. `dir` receives the files given by path.
 */
async function runFiles(seed, indices, { dir, onCase = () => {}, timeoutMs = 120_000, log = () => {} } = {}) {
  const st = require('../../dist/internal').safetensors;
  const lf = require('../../dist/internal').loraFormat;
  const s = summary();
  s.accepted = 0;
  s.inspected = { ok: 0, codes: {} };
  s.byMethod = { 'adapters.add': 0, 'Pipeline.load': 0 };
  if (!indices.length) return s;
  const started = Date.now();
  mkdirSync(dir, { recursive: true });
  const fx = families.sd15;
  const base = { a: { path: fx.lora('style-a') }, b: { path: fx.lora('style-b') } };
  const pipeline = await Pipeline.load(fx.model, { adapters: base, onWarning: () => {} });
  const fail = (index, c, problem) =>
    s.failures.push({ phase: 'files', index, description: c.description, file: c.file, problem });
  try {
    const reference = await pipeline.generate('a reference', REFERENCE_CALL);
    for (const index of indices) {
      if (s.cases > 0 && s.cases % 100 === 0)
        log(`files: ${s.cases} cases, ${s.accepted} loaded, ${s.rejected} rejected`);
      onCase({ phase: 'files', index, description: '(being made)' });
      const c = fileCase(seed, index);
      c.file = path.join(dir, `case-${index}.safetensors`);
      writeFileSync(c.file, c.bytes); // kept by the caller for a crash; removed after a clean run
      onCase({ phase: 'files', index, description: c.description, file: c.file });
      s.cases += 1;
      s.byMethod[c.via] += 1;

      // The inspection API: succeeds or fails typed, and agrees with itself.
      for (const inspect of [
        () => st.parseSafetensors(c.bytes),
        () => lf.inspectLora(c.bytes),
        () => lf.inspectLora(c.file),
      ]) {
        try {
          await inspect();
          s.inspected.ok += 1;
        } catch (err) {
          const k = classify(err);
          if (k.code) s.inspected.codes[k.code] = (s.inspected.codes[k.code] ?? 0) + 1;
          else fail(index, c, `inspection: ${k.failure}`);
        }
      }

      const spec =
        c.as === 'data' ? { data: c.bytes, alpha: 0.8, scale: c.scale } : { path: c.file, alpha: 0.8, scale: c.scale };
      let target;
      let owned = false;
      try {
        if (c.via === 'adapters.add') {
          await withTimeout(pipeline.adapters.add('fuzz', spec), timeoutMs, `files case ${index} (adapters.add)`);
          target = pipeline;
        } else {
          target = await withTimeout(
            Pipeline.load(fx.model, { adapters: { fuzz: spec }, onWarning: () => {} }),
            timeoutMs,
            `files case ${index} (Pipeline.load)`,
          );
          owned = true;
        }
      } catch (err) {
        const k = classify(err);
        if (k.code) count(s, k.code);
        else fail(index, c, k.failure);
        if (k.code === 'ERR_GENAI')
          s.genai = [...(s.genai ?? []), { index, description: c.description, message: err.message.slice(0, 300) }];
        continue;
      }
      s.accepted += 1;
      try {
        if (!target.adapters.has('fuzz')) fail(index, c, 'loaded, but not in adapters.list()');
        const call = { seed: c.seed, width: 16, height: 16, steps: 1, scheduler: 'euler', adapters: { fuzz: 1 } };
        const image = await withTimeout(target.generate('a cat', call), timeoutMs, `files case ${index} (generate)`);
        const bad = checkImages(image, { options: call });
        if (bad) fail(index, c, `generate resolved with ${bad}`);
        else s.generated += 1;
      } catch (err) {
        const k = classify(err);
        if (k.code) {
          s.codes[`generate:${k.code}`] = (s.codes[`generate:${k.code}`] ?? 0) + 1;
          if (k.code === 'ERR_GENAI')
            s.genai = [...(s.genai ?? []), { index, description: c.description, message: err.message.slice(0, 300) }];
        } else fail(index, c, `generate: ${k.failure}`);
      } finally {
        if (owned) await target.dispose();
      }
    }
    if (pipeline.adapters.has('fuzz')) await pipeline.adapters.remove('fuzz');
    await checkReference(pipeline, reference, s, 'files');
  } finally {
    await pipeline.dispose();
  }
  s.ms = Date.now() - started;
  return s;
}

module.exports = { Rng, mix, optionsCase, fileCase, runOptions, runFiles, classify, REFERENCE_CALL, OPTION_ADAPTERS };
