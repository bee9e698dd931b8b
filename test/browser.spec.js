// The page of `multilora serve`, driven in Debian's Chromium by playwright-core (which never downloads a browser).
// scripts/setup-test-deps.sh installs /usr/bin/chromium (README.md, .ci/run); without it this fails, saying so.
'use strict';
const assert = require('node:assert/strict');
const { existsSync, mkdtempSync, rmSync, mkdirSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { startServer } = require('../dist/internal').server;
const { families } = require('./helpers/fixtures');

const CHROMIUM = '/usr/bin/chromium';
// Every run saves its screenshots under test/output/ (git-ignored); `npm run screenshots` refreshes the ones in
// docs/screenshots/ that the README shows.
const SHOTS = process.env.MULTILORA_UPDATE_SCREENSHOTS
  ? path.join(__dirname, '..', 'docs', 'screenshots')
  : path.join(__dirname, 'output', 'screenshots');
const fx = families.sdxl;

describe('server: the page in Chromium', function () {
  let server;
  let browser;
  let page;
  let profile;
  // What the console said at level error (a failed load of the page's resources, a 404 included, is one).
  const consoleErrors = [];
  before(async function () {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: run 'bash scripts/setup-test-deps.sh' as root (it installs Debian's chromium and redis-server), then npm test`,
    );
    server = await startServer({
      model: fx.model,
      loras: [
        { name: 'style-a', path: fx.lora('style-a'), alpha: 0.8 },
        { name: 'style-b', path: fx.lora('style-b'), alpha: 0.5 },
      ],
      host: '127.0.0.1',
      port: 0,
    });
    profile = mkdtempSync(path.join(os.tmpdir(), 'multilora-chromium-'));
    // A fresh profile each run; playwright passes it to Chromium as --user-data-dir.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      viewport: { width: 1100, height: 900 },
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (err) => {
      throw err;
    });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(`${message.text()} (${message.location().url})`);
    });
    await page.goto(server.url);
    await page.waitForSelector('body[data-state=idle]');
  });
  after(async function () {
    await browser?.close();
    await server?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('offers the catalogue with alpha sliders, and sizes derived from the model', async function () {
    const names = await page.$$eval('.lora', (rows) => rows.map((r) => r.dataset.name));
    assert.deepEqual(names, ['style-a', 'style-b']);
    const sizes = await page.$$eval('#width option', (os) => os.map((o) => Number(o.value)));
    assert.equal(sizes[0], 32);
    assert.equal(sizes.at(-1), 128);
    assert.equal(await page.inputValue('#width'), '64'); // the model's default
    assert.equal(await page.inputValue('#steps'), '50');
  });

  it('shows a 10-digit seed whole in the seed box', async function () {
    await page.fill('#seed', '4294967295');
    const box = await page.$eval('#seed', (input) => ({ client: input.clientWidth, scroll: input.scrollWidth }));
    // A text wider than its box scrolls inside it: scrollWidth then exceeds clientWidth.
    assert.ok(box.scroll <= box.client, `the seed box is ${box.client} px wide for ${box.scroll} px of digits`);
    // scrollWidth does not count the spin buttons of a number box: the digits must also fit beside them.
    const fits = await page.$eval('#seed', (input) => {
      const style = getComputedStyle(input);
      const context = document.createElement('canvas').getContext('2d');
      context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
      return { text: context.measureText(input.value).width, room: input.clientWidth - padding };
    });
    assert.ok(
      fits.text + 20 <= fits.room,
      `the digits need ${fits.text} px and 20 px of spin buttons in ${fits.room} px`,
    );
  });

  it('generates with two adapters: progress on the way, the image, the history', async function () {
    await page.fill('#prompt', 'a lighthouse in a storm');
    for (const name of ['style-a', 'style-b']) await page.check(`.lora[data-name="${name}"] input[type=checkbox]`);
    await page.fill('.lora[data-name="style-b"] input[type=range]', '0.3');
    await page.selectOption('#width', '128');
    await page.selectOption('#height', '96');
    await page.fill('#steps', '12');
    await page.fill('#seed', '1234');
    await page.click('#generate');
    await page.waitForSelector('body[data-state=done]', { timeout: 60_000 });
    const events = Number(await page.getAttribute('#progress', 'data-events'));
    assert.ok(events >= 1, 'the page showed no progress event');
    assert.equal(await page.$eval('#progress', (p) => [p.value, p.max].join('/')), '12/12');
    const size = await page.$eval('#image', (img) => [img.hidden, img.naturalWidth, img.naturalHeight]);
    assert.deepEqual(size, [false, 128, 96]);
    const history = await page.$$eval('#history li', (lis) => lis.map((li) => li.textContent));
    assert.equal(history.length, 1);
    assert.match(history[0], /seed 1234 · 12 steps .* style-a 0\.8, style-b 0\.3/);
    assert.match(await page.getAttribute('#download', 'href'), /^data:image\/png;base64,/);
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'page.png'), fullPage: true });
  });

  it('cancels a long run: the page says so, and the server is free again', async function () {
    await page.fill('#steps', '500');
    await page.click('#generate');
    await page.waitForFunction(
      () =>
        Number(document.getElementById('progress').dataset.step || 0) >= 2 && document.body.dataset.state === 'running',
      null,
      { timeout: 60_000 },
    );
    await page.click('#cancel');
    await page.waitForSelector('body[data-state=cancelled]', { timeout: 30_000 });
    assert.match(await page.textContent('#status'), /^Cancelled at step \d+\/500\.$/);
    await page.screenshot({ path: path.join(SHOTS, 'cancelled.png'), fullPage: true });
    const status = await (await fetch(`${server.url}/v1/status`)).json();
    assert.equal(status.queue.active, 0);
    assert.equal(status.counters.cancelled, 1);
    assert.equal(await page.isDisabled('#generate'), false);
    assert.equal(await page.isDisabled('#cancel'), true);
    // And it generates again.
    await page.fill('#steps', '2');
    await page.click('#generate');
    await page.waitForSelector('body[data-state=done]', { timeout: 60_000 });
    assert.equal((await page.$$('#history li')).length, 2);
  });

  it('has said nothing at level error in the console (a missing favicon would be a 404) but the cancel', async function () {
    // The cancelled generation's POST answers 499 ERR_CANCELLED (docs/SERVER.md), which Chromium logs as a failed
    // load; that one is by design, and the only one allowed.
    const cancelled =
      /^Failed to load resource: the server responded with a status of 499 .*\/v1\/images\/generations\)$/;
    assert.ok(consoleErrors.filter((e) => cancelled.test(e)).length <= 1, consoleErrors.join('\n'));
    assert.deepEqual(
      consoleErrors.filter((e) => !cancelled.test(e)),
      [],
    );
    const icon = await page.$eval('link[rel=icon]', (link) => link.href);
    const response = await fetch(icon);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'image/svg+xml');
  });
});

describe('server: the page in Chromium, with an API key', function () {
  const KEY = 'browser-test-key-0123456789abcdef';
  let server;
  let browser;
  let page;
  let profile;
  const urls = [];
  const authorizations = [];
  before(async function () {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run 'bash scripts/setup-test-deps.sh' as root`);
    server = await startServer({ model: fx.model, host: '127.0.0.1', port: 0, apiKey: KEY });
    profile = mkdtempSync(path.join(os.tmpdir(), 'multilora-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      viewport: { width: 1100, height: 900 },
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (err) => {
      throw err;
    });
    page.on('request', (req) => {
      urls.push(req.url());
      if (new URL(req.url()).pathname.endsWith('/events')) authorizations.push(req.headers().authorization);
    });
    await page.goto(server.url);
  });
  after(async function () {
    await browser?.close();
    await server?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('asks for the key on a 401, refuses a wrong one, and keeps the right one for the tab', async function () {
    await page.waitForSelector('body[data-state=locked]');
    assert.equal(await page.isVisible('#api-key'), true);
    assert.match(await page.textContent('#status'), /needs its API key/);
    // Generate while locked posts nothing, and points at the field.
    await page.fill('#prompt', 'not yet');
    await page.$eval('#api-key', (input) => input.blur());
    await page.click('#generate');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'api-key');
    assert.ok(!urls.some((u) => u.endsWith('/v1/images/generations')), 'a locked page posted a generation');
    await page.fill('#api-key', 'not-the-key-0123456789');
    await page.click('#auth button');
    await page.waitForFunction(() => /not the server's/.test(document.getElementById('status').textContent));
    assert.equal(await page.getAttribute('body', 'data-state'), 'locked');
    await page.fill('#api-key', KEY);
    await page.click('#auth button');
    await page.waitForSelector('body[data-state=idle]');
    assert.equal(await page.isVisible('#auth'), false);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('multilora-api-key')), KEY);
  });

  it('generates with the key, following the progress over fetch(), and never puts the key in a URL', async function () {
    await page.fill('#prompt', 'a locked door');
    await page.selectOption('#width', '64');
    await page.selectOption('#height', '64');
    await page.fill('#steps', '6');
    await page.click('#generate');
    await page.waitForSelector('body[data-state=done]', { timeout: 60_000 });
    assert.ok(Number(await page.getAttribute('#progress', 'data-events')) >= 1, 'the page showed no progress event');
    assert.deepEqual(authorizations, [`Bearer ${KEY}`], 'the event stream was not asked with the key');
    assert.ok(urls.length > 0);
    for (const url of urls) assert.ok(!url.includes(KEY), `the key is in ${url}`);
    // A reload keeps the key for the tab: no question this time.
    await page.reload();
    await page.waitForSelector('body[data-state=idle]');
  });
});
