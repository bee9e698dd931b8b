// `multilora serve`'s HTTP API on loopback (port 0), with the real GenAI on the tiny SDXL fixture.
'use strict';
const assert = require('node:assert/strict');
const http = require('node:http');
const { readFileSync } = require('node:fs');
const path = require('node:path');
const { decodePng } = require('..');
const { startServer } = require('../dist/internal').server;
const net = require('node:net');
const { families, until, rejectsWith, freePort } = require('./helpers/fixtures');

const fx = families.sdxl;
const LORAS = [
  { name: 'style-a', path: fx.lora('style-a'), alpha: 0.8 },
  { name: 'style-b', path: fx.lora('style-b'), alpha: 0.6 },
];
/** A job that takes seconds on the tiny model (about 15-40 ms a step at 128x128), so that it is caught running. */
const SLOW = { prompt: 'slow', size: '128x128', steps: 500, seed: 3 };

describe('server: HTTP API', function () {
  let server;
  let base;
  before(async function () {
    server = await startServer({
      model: fx.model,
      loras: LORAS,
      host: '127.0.0.1',
      port: 0,
      maxQueue: 3,
      maxBodyBytes: 64 * 1024,
    });
    base = server.url;
  });
  after(async function () {
    await server?.close();
  });

  function post(body, headers = {}) {
    return fetch(`${base}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }
  async function generate(body) {
    const res = await post(body);
    const json = await res.json();
    assert.equal(res.status, 200, JSON.stringify(json));
    return json;
  }
  const status = async () => (await fetch(`${base}/v1/status`)).json();
  async function expectError(res, statusCode, code) {
    const body = await res.json();
    assert.equal(res.status, statusCode, JSON.stringify(body));
    assert.equal(body.error.code, code, JSON.stringify(body));
    assert.equal(typeof body.error.message, 'string');
    return body.error;
  }

  it('binds to the url it reports, on 127.0.0.1 with a free port', function () {
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(new URL(base).port, '0');
  });

  it('generates a decodable PNG of the asked size, with seed, timings and the adapters used', async function () {
    const out = await generate({ prompt: 'a hill', size: '96x64', steps: 3, seed: 7, loras: { 'style-a': 0.5 } });
    assert.equal(out.data.length, 1);
    const png = decodePng(Buffer.from(out.data[0].b64_json, 'base64'));
    assert.deepEqual([png.width, png.height], [96, 64]);
    assert.equal(out.data[0].seed, 7);
    assert.equal(out.size, '96x64');
    assert.deepEqual(out.loras, { 'style-a': 0.5 });
    assert.ok(out.timings.generate_ms > 0 && out.timings.step_ms_mean > 0, JSON.stringify(out.timings));
    assert.match(out.job_id, /^[0-9a-f-]{36}$/);
    assert.equal(typeof out.created, 'number');
  });

  it('reproduces an image from its seed; a random seed is reported and reproduces too; n gives a batch', async function () {
    const req = { prompt: 'a hill', size: '64x64', steps: 2, seed: 11 };
    const [a, b] = [await generate(req), await generate(req)];
    assert.equal(a.data[0].b64_json, b.data[0].b64_json);
    const random = await generate({ prompt: 'a hill', size: '64x64', steps: 2 });
    const again = await generate({ prompt: 'a hill', size: '64x64', steps: 2, seed: random.seed });
    assert.equal(random.data[0].b64_json, again.data[0].b64_json);
    const batch = await generate({ ...req, n: 2 });
    assert.equal(batch.data.length, 2);
    assert.notEqual(batch.data[0].b64_json, batch.data[1].b64_json);
  });

  it('changes the image with loras, and with their alphas', async function () {
    const req = { prompt: 'a hill', size: '64x64', steps: 2, seed: 5 };
    const plain = (await generate(req)).data[0].b64_json;
    const a = (await generate({ ...req, loras: { 'style-a': 1 } })).data[0].b64_json;
    const ab = (await generate({ ...req, loras: { 'style-a': 1, 'style-b': 0.7 } })).data[0].b64_json;
    const aDefault = await generate({ ...req, loras: { 'style-a': null } });
    assert.deepEqual(aDefault.loras, { 'style-a': 0.8 });
    assert.equal(new Set([plain, a, ab, aDefault.data[0].b64_json]).size, 4);
  });

  it('lists the catalogue: names, default alphas, templates, match reports; never file paths', async function () {
    const res = await fetch(`${base}/v1/loras`);
    const body = await res.json();
    assert.deepEqual(
      body.data.map((l) => [l.name, l.alpha]),
      [
        ['style-a', 0.8],
        ['style-b', 0.6],
      ],
    );
    for (const l of body.data) {
      assert.equal(l.template, null);
      assert.equal(l.report.format, 'kohya');
      assert.ok(l.report.matched > 0);
    }
    assert.ok(!JSON.stringify(body).includes('.safetensors'), 'the catalogue shows a file path');
  });

  it('answers malformed JSON with 400 and lives on', async function () {
    await expectError(await post('{"prompt": "a hill",'), 400, 'ERR_INVALID_JSON');
    await expectError(await post(''), 400, 'ERR_INVALID_JSON');
    await expectError(await post('[1, 2]'), 400, 'ERR_INVALID_ARGUMENT');
    await expectError(await post('a=b', { 'content-type': 'text/plain' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    const out = await generate({ prompt: 'after', size: '64x64', steps: 1, seed: 1 });
    assert.equal(out.data.length, 1);
  });

  it('rejects bad fields with 400 and the field named', async function () {
    const cases = [
      [{ size: '64x64' }, /prompt/],
      [{ prompt: 'x', size: '63x64' }, /size/],
      [{ prompt: 'x', size: '4096x4096' }, /from 32 to 128/],
      [{ prompt: 'x', size: 'big' }, /WIDTHxHEIGHT/],
      [{ prompt: 'x', response_format: 'url' }, /b64_json/],
      [{ prompt: 'x', n: 9 }, /\bn\b/],
      [{ prompt: 'x', steps: 0 }, /steps/],
      [{ prompt: 'x', seed: -1 }, /seed/],
      [{ prompt: 'x', guidance_scale: 'high' }, /guidance_scale/],
      [{ prompt: 'x', sampler: 'euler' }, /Unknown field "sampler"/],
      [{ prompt: 'x', loras: { 'style-a': 'strong' } }, /style-a/],
      [{ prompt: 'x', job_id: 'a/b' }, /job_id/],
    ];
    for (const [body, message] of cases) {
      const e = await expectError(await post(body), 400, 'ERR_INVALID_ARGUMENT');
      assert.match(e.message, message);
    }
  });

  it('checks a request once in this process: the library check, with the fields named and the service limits', async function () {
    const { checkHooks } = require('../dist/internal').options;
    const checks = [];
    checkHooks.onCheck = (check) => checks.push(check);
    try {
      const out = await generate({ prompt: 'once', size: '64x64', steps: 2, seed: 5, loras: { 'style-a': null } });
      assert.equal(out.seed, 5);
      assert.deepEqual(out.loras, { 'style-a': 0.8 });
      assert.deepEqual(checks, ['call'], 'checks of the call in the server process');
      checks.length = 0;
      // The one check is the library's, with the service limits (steps at most 500, not 1000) and the field's name.
      const e = await expectError(await post({ prompt: 'x', steps: 501 }), 400, 'ERR_INVALID_ARGUMENT');
      assert.equal(e.message, 'Expected an integer from 1 to 500 for steps but received 501');
      assert.deepEqual(checks, ['call']);
    } finally {
      checkHooks.onCheck = undefined;
    }
  });

  it('rejects an adapter outside the catalogue, and any name that looks like a path', async function () {
    const unknown = await expectError(await post({ prompt: 'x', loras: { 'style-c': 1 } }), 400, 'ERR_UNKNOWN_ADAPTER');
    assert.match(unknown.message, /"style-c".*"style-a", "style-b"/);
    for (const name of [fx.lora('style-a'), '../loras/sdxl/style-a', 'style-a.safetensors', 'loras\\style-a', '~/x']) {
      const e = await expectError(await post({ prompt: 'x', loras: { [name]: 1 } }), 400, 'ERR_UNKNOWN_ADAPTER');
      assert.match(e.message, /looks like a path/);
    }
    assert.equal((await status()).counters.failed, 0, 'a rejected request reached the pipeline');
  });

  it('answers a body over maxBodyBytes with 413', async function () {
    const res = await post({ prompt: 'x'.repeat(70 * 1024) });
    await expectError(res, 413, 'ERR_BODY_TOO_LARGE');
    assert.equal((await generate({ prompt: 'after', size: '64x64', steps: 1, seed: 1 })).data.length, 1);
  });

  it('reports its limits and timeouts in /v1/status', async function () {
    const { limits } = await status();
    assert.deepEqual(
      [
        limits.max_queue,
        limits.max_body_bytes,
        limits.max_header_bytes,
        limits.headers_timeout_ms,
        limits.request_timeout_ms,
        limits.keep_alive_timeout_ms,
      ],
      [3, 64 * 1024, 16 * 1024, 10_000, 30_000, 5_000],
    );
  });

  it('refuses a Host other than loopback (DNS rebinding)', async function () {
    const code = await new Promise((resolve, reject) => {
      const req = http.get(`${base}/v1/status`, { headers: { host: 'attacker.example:80' } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
    });
    assert.equal(code, 403);
  });

  /** A request with a path as given (fetch would normalize it): its status, headers and parsed JSON body. */
  function raw(method, pathname, headers = {}, setHost = true) {
    return new Promise((resolve, reject) => {
      const req = http.request(base, { method, path: pathname, headers, setHost }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end();
    });
  }
  /** Asserts the documented error body: exactly { error: { code, message } }, the message short. */
  function assertErrorBody(r, statusCode, code, what) {
    assert.equal(r.status, statusCode, `${what}: ${JSON.stringify(r.body)}`);
    assert.deepEqual(Object.keys(r.body), ['error'], what);
    assert.deepEqual(Object.keys(r.body.error), ['code', 'message'], what);
    assert.equal(r.body.error.code, code, what);
    assert.ok(
      r.body.error.message.length < 200,
      `${what}: the message echoes the path (${r.body.error.message.length} characters)`,
    );
    assert.match(r.headers['content-type'], /^application\/json/, what);
  }

  it('answers over-long job ids, bad percent-encoding and odd paths with the documented error body', async function () {
    const long = 'a'.repeat(200);
    const huge = 'b'.repeat(8000);
    const cases = [
      ['GET', `/v1/jobs/${long}`, 400, 'ERR_INVALID_ARGUMENT'],
      ['GET', `/v1/jobs/${long}/events`, 400, 'ERR_INVALID_ARGUMENT'],
      ['DELETE', `/v1/jobs/${long}`, 400, 'ERR_INVALID_ARGUMENT'],
      ['GET', `/v1/jobs/${huge}`, 400, 'ERR_INVALID_ARGUMENT'],
      ['POST', `/v1/jobs/${long}`, 405, 'ERR_METHOD_NOT_ALLOWED'],
      ['GET', '/%', 400, 'ERR_MALFORMED_REQUEST'],
      ['GET', '/v1/jobs/%zz', 400, 'ERR_MALFORMED_REQUEST'],
      ['GET', '/v1/jobs/%E0%A4%A/events', 400, 'ERR_MALFORMED_REQUEST'],
      ['GET', '//', 404, 'ERR_NOT_FOUND'],
      ['GET', '/v1//status', 404, 'ERR_NOT_FOUND'],
      ['GET', `/${huge}`, 404, 'ERR_NOT_FOUND'],
      ['GET', '/v1/jobs/a%2Fb', 400, 'ERR_INVALID_ARGUMENT'],
    ];
    for (const [method, pathname, statusCode, code] of cases) {
      assertErrorBody(await raw(method, pathname), statusCode, code, `${method} ${pathname.slice(0, 40)}`);
    }
    // Node's own answer to a request without Host is an empty 400.
    assertErrorBody(
      await raw('GET', '/v1/status', {}, false),
      400,
      'ERR_MALFORMED_REQUEST',
      'GET /v1/status without Host',
    );
    // The router's refusals pass the Host check first, as every other request does.
    assertErrorBody(
      await raw('GET', '/%', { host: 'attacker.example' }),
      403,
      'ERR_FORBIDDEN_HOST',
      'GET /% from another host',
    );
  });

  it('streams progress over SSE, opened before the job is posted, then a final done event', async function () {
    const id = 'sse-test-1';
    const { followEvents } = await import('./helpers/load-server.mjs');
    const { events, done: stream } = followEvents(base, id);
    await new Promise((r) => setTimeout(r, 100));
    const out = await generate({ prompt: 'a hill', size: '64x64', steps: 5, seed: 2, job_id: id, preview: true });
    await stream; // the server ends the stream after the final event
    const names = events.map(([e]) => e);
    assert.equal(names[0], 'queued');
    assert.equal(names.at(-1), 'done');
    const progress = events.filter(([e]) => e === 'progress').map(([, d]) => d);
    assert.ok(progress.length >= 1, 'no progress event');
    for (const p of progress) {
      assert.equal(p.total, 5);
      assert.equal(p.job_id, id);
      assert.ok(p.step >= 1 && p.step <= 5 && p.elapsedMs >= 0);
      assert.match(p.preview, /^data:image\/png;base64,/);
    }
    assert.equal(events.at(-1)[1].seed, out.seed);
    // Joining after the end replays the final event.
    const lateRes = await fetch(`${base}/v1/jobs/${id}/events`);
    assert.equal(lateRes.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.match(await lateRes.text(), /event: done/);
  });

  it('cancels a running job with DELETE: 499 for its request, a cancelled event, and the pipeline is free', async function () {
    const id = 'cancel-me';
    const running = post({ ...SLOW, job_id: id });
    await until('the job to run', async () => (await (await fetch(`${base}/v1/jobs/${id}`)).json()).step > 0);
    const del = await fetch(`${base}/v1/jobs/${id}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    await expectError(await running, 499, 'ERR_CANCELLED');
    const job = await (await fetch(`${base}/v1/jobs/${id}`)).json();
    assert.equal(job.state, 'cancelled');
    assert.ok(job.step < 500);
    assert.match(
      await (await fetch(`${base}/v1/jobs/${id}/events`)).text(),
      /event: cancelled\ndata: .*"reason":"cancelled"/,
    );
    await expectError(await fetch(`${base}/v1/jobs/${id}`, { method: 'DELETE' }), 409, 'ERR_JOB_FINISHED');
    await expectError(await fetch(`${base}/v1/jobs/nope`, { method: 'DELETE' }), 404, 'ERR_NOT_FOUND');
    assert.equal((await status()).queue.active, 0);
  });

  it('answers 429 when maxQueue jobs are queued or running, and takes jobs again once they are gone', async function () {
    const ids = ['q1', 'q2', 'q3'];
    const slow = ids.map((id) => post({ ...SLOW, job_id: id }));
    await until('three active jobs', async () => (await status()).queue.active === 3);
    const full = await post({ prompt: 'one too many', size: '64x64', steps: 1 });
    await expectError(full, 429, 'ERR_QUEUE_FULL');
    assert.equal(full.headers.get('retry-after'), '5');
    assert.equal((await status()).counters.rejectedFull, 1);
    for (const id of [...ids].reverse())
      assert.equal((await fetch(`${base}/v1/jobs/${id}`, { method: 'DELETE' })).status, 202);
    for (const res of await Promise.all(slow)) await expectError(res, 499, 'ERR_CANCELLED');
    assert.equal((await generate({ prompt: 'room again', size: '64x64', steps: 1, seed: 1 })).data.length, 1);
  });

  it('aborts the job of a client that disconnects before its response', async function () {
    const before = (await status()).counters;
    const req = http.request(`${base}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-job-id': 'leaver' },
    });
    req.on('error', () => undefined);
    req.end(JSON.stringify(SLOW));
    await until('the job to run', async () => {
      const res = await fetch(`${base}/v1/jobs/leaver`);
      return res.ok && (await res.json()).step > 0;
    });
    req.destroy();
    const after = await until('the job to be aborted', async () => {
      const s = await status();
      return s.queue.active === 0 && s.counters;
    });
    assert.equal(after.disconnected, before.disconnected + 1);
    const job = await (await fetch(`${base}/v1/jobs/leaver`)).json();
    assert.equal(job.state, 'cancelled');
    assert.equal(job.aborted_by, 'disconnected');
    assert.ok(job.step < 500, `it ran all ${job.step} steps`);
  });

  it('serves the OpenAPI document, equal to docs/openapi.json, with every path', async function () {
    const res = await fetch(`${base}/openapi.json`);
    assert.equal(res.status, 200);
    const served = await res.json();
    assert.equal(served.openapi, '3.0.3');
    for (const p of ['/v1/images/generations', '/v1/loras', '/v1/status', '/v1/jobs/{id}', '/v1/jobs/{id}/events']) {
      assert.ok(served.paths[p], `no ${p}`);
    }
    const committed = JSON.parse(readFileSync(path.join(__dirname, '..', 'docs', 'openapi.json'), 'utf8'));
    assert.deepEqual(committed, served, 'docs/openapi.json is stale: regenerate it as docs/SERVER.md says');
    // The key and the Host guard: every API operation documents its 401 and its 403, and the scheme is optional.
    assert.deepEqual(served.components.securitySchemes.apiKey, {
      type: 'http',
      scheme: 'bearer',
      description: served.components.securitySchemes.apiKey.description,
    });
    assert.deepEqual(served.security, [{}, { apiKey: [] }]);
    for (const [p, operations] of Object.entries(served.paths)) {
      for (const [method, op] of Object.entries(operations)) {
        assert.ok(op.responses['403'], `${method} ${p} has no 403`);
        if (p.startsWith('/v1/'))
          assert.ok(op.responses['401'].headers['WWW-Authenticate'], `${method} ${p} has no 401`);
        else assert.deepEqual(op.security, [], `${method} ${p} should need no key`);
      }
    }
  });

  it('serves the page and its files, with a CSP; 404 as JSON', async function () {
    const html = await fetch(`${base}/`);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type'), /text\/html/);
    assert.match(html.headers.get('content-security-policy'), /default-src 'self'/);
    assert.match(await html.text(), /<script src="app.js"/);
    for (const f of ['/app.js', '/style.css', '/favicon.svg']) assert.equal((await fetch(base + f)).status, 200);
    await expectError(await fetch(`${base}/../package.json`), 404, 'ERR_NOT_FOUND');
    await expectError(await fetch(`${base}/web/app.js`), 404, 'ERR_NOT_FOUND');
  });
});

/** GET /v1/status on `connect` (a loopback address) and `port`, with a Host header: its status and error code. */
function statusWithHost(connect, port, host) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: connect, port, path: '/v1/status', headers: { host } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve([res.statusCode, JSON.parse(text).error?.code]));
    });
    req.on('error', reject);
  });
}

describe('server: where it listens', function () {
  // One server at a time on the tiny model; each is asked with loopback Host names and with others. Only loopback
  // addresses are ever connected to, even for the server bound to 0.0.0.0.
  const cases = [
    { host: '127.0.0.2', url: /^http:\/\/127\.0\.0\.2:\d+$/, connect: '127.0.0.2', guarded: true },
    { host: '::1', url: /^http:\/\/\[::1\]:\d+$/, connect: '::1', guarded: true },
    { host: '::ffff:127.0.0.1', url: /^http:\/\/\[::ffff:127\.0\.0\.1\]:\d+$/, connect: '127.0.0.1', guarded: true },
    { host: 'localhost', url: /^http:\/\/(127\.0\.0\.1|\[::1\]):\d+$/, connect: 'localhost', guarded: true },
    { host: '0.0.0.0', url: /^http:\/\/0\.0\.0\.0:\d+$/, connect: '127.0.0.1', guarded: false },
  ];
  for (const c of cases) {
    it(`--host ${c.host}: reports the bound address, and ${c.guarded ? 'answers only to loopback Host names' : 'answers any Host name'}`, async function () {
      const server = await startServer({ model: fx.model, host: c.host, port: 0 });
      try {
        assert.match(server.url, c.url);
        const port = Number(new URL(server.url).port);
        for (const name of [
          '127.0.0.1',
          `127.0.0.2:${port}`,
          '127.255.0.9',
          'localhost',
          `LOCALHOST:${port}`,
          '[::1]',
          `[::ffff:127.0.0.1]:${port}`,
        ]) {
          assert.deepEqual(await statusWithHost(c.connect, port, name), [200, undefined], `Host: ${name}`);
        }
        for (const name of [
          'attacker.example',
          `attacker.example:${port}`,
          '127.0.0.1.attacker.example',
          '10.0.0.1',
          '[::2]',
          'localhost@attacker.example',
        ]) {
          assert.deepEqual(
            await statusWithHost(c.connect, port, name),
            c.guarded ? [403, 'ERR_FORBIDDEN_HOST'] : [200, undefined],
            `Host: ${name}`,
          );
        }
      } finally {
        await server.close();
      }
    });
  }
});

describe('server: options', function () {
  it('refuses bad limits and timeouts with ERR_INVALID_ARGUMENT, before loading the model', async function () {
    const cases = [
      [{ maxQueue: 0 }, /maxQueue/],
      [{ maxBodyBytes: 100 }, /maxBodyBytes/],
      [{ headersTimeoutMs: 50 }, /headersTimeoutMs/],
      [{ requestTimeoutMs: 1500.5 }, /requestTimeoutMs/],
      [{ keepAliveTimeoutMs: Number.NaN }, /keepAliveTimeoutMs/],
      [{ headersTimeoutMs: 5000, requestTimeoutMs: 4000 }, /headersTimeoutMs of at most requestTimeoutMs/],
    ];
    for (const [bad, message] of cases) {
      const started = Date.now();
      await assert.rejects(startServer({ model: '/nonexistent', host: '127.0.0.1', port: 0, ...bad }), (err) => {
        assert.equal(err.code, 'ERR_INVALID_ARGUMENT', err.message);
        assert.match(err.message, message);
        return true;
      });
      assert.ok(Date.now() - started < 1000);
    }
  });
});

describe('server: with an API key', function () {
  const KEY = 'k3y-for-tests_0123456789abcdef';
  let server;
  before(async function () {
    server = await startServer({ model: fx.model, host: '127.0.0.1', port: 0, apiKey: KEY });
  });
  after(async function () {
    await server?.close();
  });
  /** A request on a raw socket (any request line, any headers): the status, the headers, the parsed body. */
  function rawRequest(requestLine, headers = {}, body = '') {
    const port = Number(new URL(server.url).port);
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        const lines = Object.entries({ host: `127.0.0.1:${port}`, connection: 'close', ...headers }).map(
          ([k, v]) => `${k}: ${v}\r\n`,
        );
        socket.write(`${requestLine}\r\n${lines.join('')}\r\n${body}`);
      });
      let text = '';
      socket.on('data', (chunk) => (text += chunk));
      socket.on('error', reject);
      socket.on('close', () => {
        const [head, rest] = text.split('\r\n\r\n');
        const [status, ...fields] = head.split('\r\n');
        const parsed = Object.fromEntries(
          fields.map((f) => [f.slice(0, f.indexOf(':')).toLowerCase(), f.slice(f.indexOf(':') + 1).trim()]),
        );
        resolve({ status: Number(status.split(' ')[1]), headers: parsed, body: rest ? JSON.parse(rest) : undefined });
      });
    });
  }
  function assertUnauthorized(r, what, invalidToken) {
    assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.body)}`);
    assert.deepEqual(Object.keys(r.body.error), ['code', 'message'], what);
    assert.equal(r.body.error.code, 'ERR_UNAUTHORIZED', what);
    assert.equal(
      r.headers['www-authenticate'],
      invalidToken ? 'Bearer realm="multilora", error="invalid_token"' : 'Bearer realm="multilora"',
      what,
    );
    assert.ok(!JSON.stringify(r.body).includes(KEY), `${what}: the body shows the key`);
  }

  it('answers every API request without the key 401 ERR_UNAUTHORIZED with WWW-Authenticate: Bearer', async function () {
    for (const line of [
      'GET /v1/status HTTP/1.1',
      'GET /v1/loras HTTP/1.1',
      'GET /v1/jobs/some-job HTTP/1.1',
      'GET /v1/jobs/some-job/events HTTP/1.1',
      'DELETE /v1/jobs/some-job HTTP/1.1',
      'GET /v1/nothing-here HTTP/1.1',
      'GET /% HTTP/1.1',
      // An absolute-form request line routes to /v1/status: the check follows the route, not the text of the URL.
      `GET http://127.0.0.1:${new URL(server.url).port}/v1/status HTTP/1.1`,
    ]) {
      assertUnauthorized(await rawRequest(line), line);
    }
    const body = JSON.stringify({ prompt: 'x', steps: 1 });
    const post = await rawRequest(
      'POST /v1/images/generations HTTP/1.1',
      { 'content-type': 'application/json', 'content-length': body.length },
      body,
    );
    assertUnauthorized(post, 'POST /v1/images/generations');
  });

  it('answers a wrong key, or another scheme, 401 too', async function () {
    for (const authorization of [
      `Bearer ${KEY}x`,
      `Bearer ${KEY.slice(0, -1)}`,
      'Bearer x',
      `Basic ${Buffer.from(`u:${KEY}`).toString('base64')}`,
      KEY,
      `Bearer ${KEY} extra`,
    ]) {
      const invalidToken = /^Bearer \S+$/.test(authorization);
      assertUnauthorized(await rawRequest('GET /v1/status HTTP/1.1', { authorization }), authorization, invalidToken);
    }
  });

  it('answers the API with the key, and generates', async function () {
    for (const authorization of [`Bearer ${KEY}`, `bearer ${KEY}`]) {
      assert.equal((await rawRequest('GET /v1/status HTTP/1.1', { authorization })).status, 200, authorization);
    }
    const headers = { authorization: `Bearer ${KEY}` };
    assert.equal((await fetch(`${server.url}/v1/nothing-here`, { headers })).status, 404);
    const res = await fetch(`${server.url}/v1/images/generations`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a key', size: '64x64', steps: 1, seed: 1 }),
    });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).data.length, 1);
  });

  it("serves the page's files and the OpenAPI document without the key", async function () {
    for (const f of ['/', '/index.html', '/app.js', '/style.css', '/openapi.json']) {
      assert.equal((await fetch(server.url + f)).status, 200, f);
    }
  });

  it('refuses a key that is short or not a Bearer token, without showing it', async function () {
    for (const apiKey of ['hunter2', 'a key with spaces in it', 'x'.repeat(5000), '', 42]) {
      await rejectsWith(
        startServer({ model: '/nonexistent-model', host: '127.0.0.1', port: 0, apiKey }),
        'ERR_INVALID_ARGUMENT',
        /^Expected 16 to 4096 letters, digits or -._~\+\/ .* for apiKey but received (a string of \d+ characters|42)/,
      );
      await startServer({ model: '/nonexistent-model', host: '127.0.0.1', port: 0, apiKey }).catch((err) => {
        if (typeof apiKey === 'string' && apiKey.length > 0) assert.ok(!err.message.includes(apiKey), err.message);
      });
    }
  });
});

describe('server: host and port, checked before the model loads', function () {
  // The model is a folder that does not exist: had the load come first, each would be ERR_MODEL_NOT_FOUND.
  const nowhere = '/nonexistent-model';
  let taken;
  before(async function () {
    taken = net.createServer();
    await new Promise((resolve) => taken.listen(0, '127.0.0.1', resolve));
  });
  after(async function () {
    await new Promise((resolve) => taken.close(resolve));
  });

  it('refuses a port in use, an address that is not one, a name that does not resolve, an address not of this machine', async function () {
    const port = taken.address().port;
    const cases = [
      [
        { host: '127.0.0.1', port },
        new RegExp(`^Expected a free port for port but received ${port}: .*\\(EADDRINUSE\\)`),
      ],
      [
        { host: '999.1.1.1', port: 0 },
        /^Expected an IP address or a host name for host but received "999\.1\.1\.1": an IPv4 address has four numbers/,
      ],
      [
        { host: 'no-such-host.invalid', port: 0 },
        /^Expected an IP address or a host name that resolves for host but received "no-such-host\.invalid" \((ENOTFOUND|EAI_AGAIN|EAI_FAIL)\)$/,
      ],
      [{ host: 'a b', port: 0 }, /^Expected an IP address or a host name for host but received "a b"$/],
      [
        { host: '192.0.2.1', port: 0 },
        /^Expected an address of this machine for host but received "192\.0\.2\.1" \(EADDRNOTAVAIL\)$/,
      ],
      [{ host: '127.0.0.1', port: 65536 }, /^Expected an integer from 0 to 65535 for port but received 65536$/],
      [{ host: '127.0.0.1', port: '80' }, /for port but received "80"$/],
    ];
    for (const [where, message] of cases)
      await rejectsWith(startServer({ model: nowhere, ...where }), 'ERR_INVALID_ARGUMENT', message);
  });

  it('holds the port from the check until it listens, so that a load of minutes cannot lose it', async function () {
    const port = await freePort();
    let probed;
    const server = await startServer({ model: fx.model, host: '127.0.0.1', port }, () => {
      // The checks passed and the model starts loading: the port is already bound.
      const probe = net.createServer();
      probed = new Promise((resolve) => {
        probe.once('error', (err) => resolve(err.code));
        probe.listen(port, '127.0.0.1', () => probe.close(() => resolve('bound')));
      });
    });
    try {
      assert.equal(await probed, 'EADDRINUSE');
      assert.equal(server.url, `http://127.0.0.1:${port}`);
      assert.equal((await fetch(`${server.url}/v1/status`)).status, 200);
    } finally {
      await server.close();
    }
  });

  it('releases the port when the load fails', async function () {
    const port = await freePort();
    await rejectsWith(startServer({ model: nowhere, host: '127.0.0.1', port }), 'ERR_MODEL_NOT_FOUND');
    const again = net.createServer();
    await new Promise((resolve, reject) => again.once('error', reject).listen(port, '127.0.0.1', resolve));
    await new Promise((resolve) => again.close(resolve));
  });
});

describe('server: close()', function () {
  it('aborts a running job, ends its stream, and disposes the pipeline', async function () {
    const server = await startServer({ model: fx.model, host: '127.0.0.1', port: 0 });
    const running = fetch(`${server.url}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-job-id': 'closing' },
      body: JSON.stringify(SLOW),
    }).then(
      (r) => r.json(),
      (err) => ({ error: { code: err.name } }),
    );
    for (;;) {
      const res = await fetch(`${server.url}/v1/jobs/closing`);
      if (res.ok && (await res.json()).step > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const started = Date.now();
    await server.close();
    assert.ok(Date.now() - started < 20_000);
    const body = await running;
    assert.ok(['ERR_SHUTTING_DOWN', 'TypeError'].includes(body.error.code), JSON.stringify(body));
    await assert.rejects(fetch(`${server.url}/v1/status`));
    await server.close(); // idempotent
  });
});
