// The page of `multilora serve`: no build step, no dependencies. It talks to the API that docs/openapi.json describes.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { status: null, loras: [], job: null, history: [], ready: false };
/** Where the API key stays for this tab (a server started with --api-key); never in a URL. */
const KEY_STORE = 'multilora-api-key';

/** A 401 from the API: the server has a key, and this page has none or another. */
class Unauthorized extends Error {}

/** fetch() for the API: with the key when the page has one; a 401 shows the key field and throws Unauthorized. */
async function api(path, init = {}) {
  const key = sessionStorage.getItem(KEY_STORE);
  const headers = { ...(init.headers || {}) };
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) {
    const body = await res.json().catch(() => ({}));
    askForKey(
      key ? "This key is not the server's: enter its API key." : 'This server needs its API key: enter it above.',
    );
    throw new Unauthorized((body.error && body.error.message) || 'HTTP 401');
  }
  return res;
}

function askForKey(message) {
  if (!state.ready) $('model').textContent = 'locked';
  $('auth').hidden = false;
  $('api-key').focus();
  setState('locked', message, true);
}

function setState(name, text, isError = false) {
  document.body.dataset.state = name;
  $('status').textContent = text;
  $('status').className = isError ? 'error' : 'muted';
}

function newJobId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `job-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

function option(value, label, selected) {
  const o = document.createElement('option');
  o.value = String(value);
  o.textContent = label;
  o.selected = selected;
  return o;
}

function fillSizes(select, limits, def) {
  const values = new Set();
  for (let v = limits.min; v <= limits.max; v += limits.step) values.add(v);
  values.add(def);
  for (const v of [...values].sort((a, b) => a - b)) select.append(option(v, `${v}px`, v === def));
}

function renderLoras(loras) {
  const list = $('lora-list');
  list.textContent = '';
  $('no-loras').hidden = loras.length > 0;
  for (const l of loras) {
    const row = document.createElement('div');
    row.className = 'lora';
    row.dataset.name = l.name;
    const label = document.createElement('label');
    label.className = 'inline';
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.name = 'lora';
    box.value = l.name;
    label.append(box, ` ${l.name}`);
    const slider = document.createElement('input');
    slider.type = 'range';
    slider.min = '-1';
    slider.max = '2';
    slider.step = '0.05';
    slider.value = String(l.alpha);
    slider.setAttribute('aria-label', `alpha of ${l.name}`);
    const out = document.createElement('output');
    out.textContent = Number(l.alpha).toFixed(2);
    slider.addEventListener('input', () => {
      out.textContent = Number(slider.value).toFixed(2);
      box.checked = true;
    });
    const tpl = document.createElement('p');
    tpl.className = 'template';
    const parts = [];
    parts.push(l.template ? `template: ${l.template}` : 'no template');
    if (l.negative_prompt) parts.push(`negative: ${l.negative_prompt}`);
    parts.push(`${l.report.format}, rank ${l.report.ranks.join('/')}, ${l.report.matched} tensors matched`);
    tpl.textContent = parts.join(' · ');
    row.append(label, slider, out, tpl);
    list.append(row);
  }
}

function settings() {
  const loras = {};
  for (const row of document.querySelectorAll('.lora')) {
    if (row.querySelector('input[type=checkbox]').checked)
      loras[row.dataset.name] = Number(row.querySelector('input[type=range]').value);
  }
  const s = {
    prompt: $('prompt').value,
    size: `${$('width').value}x${$('height').value}`,
    loras,
    seed: Number($('seed').value),
    steps: Number($('steps').value),
    guidance_scale: Number($('guidance').value),
    apply_template: $('apply-template').checked,
  };
  if ($('negative').value.trim()) s.negative_prompt = $('negative').value;
  return s;
}

function restore(s) {
  $('prompt').value = s.prompt;
  $('negative').value = s.negative_prompt || '';
  const [w, h] = s.size.split('x');
  $('width').value = w;
  $('height').value = h;
  $('seed').value = String(s.seed);
  $('steps').value = String(s.steps);
  $('guidance').value = String(s.guidance_scale);
  $('apply-template').checked = s.apply_template;
  for (const row of document.querySelectorAll('.lora')) {
    const on = Object.prototype.hasOwnProperty.call(s.loras, row.dataset.name);
    row.querySelector('input[type=checkbox]').checked = on;
    if (on) {
      row.querySelector('input[type=range]').value = String(s.loras[row.dataset.name]);
      row.querySelector('output').textContent = Number(s.loras[row.dataset.name]).toFixed(2);
    }
  }
}

function describeSettings(s) {
  const loras =
    Object.entries(s.loras)
      .map(([n, a]) => `${n} ${a}`)
      .join(', ') || 'no LoRA';
  return `${s.size} · seed ${s.seed} · ${s.steps} steps · guidance ${s.guidance_scale} · ${loras}`;
}

function addHistory(s, src, seconds) {
  const li = document.createElement('li');
  const img = document.createElement('img');
  img.src = src;
  img.alt = s.prompt;
  img.title = 'use these settings again';
  img.addEventListener('click', () => restore(s));
  const p = document.createElement('p');
  p.textContent = s.prompt;
  const meta = document.createElement('p');
  meta.className = 'muted';
  meta.textContent = `${describeSettings(s)} · ${seconds.toFixed(1)} s`;
  const a = document.createElement('a');
  a.href = src;
  a.download = `multilora-${s.seed}.png`;
  a.textContent = 'download';
  li.append(img, p, meta, a);
  $('history').prepend(li);
}

/**
 * Follows a job's Server-Sent Events through fetch() (EventSource cannot send the Authorization header, and the
 * key must not go in a URL): calls on[event](data) for each event until the stream ends. Returns its controller.
 */
function followEvents(id, on) {
  const controller = new AbortController();
  (async () => {
    const res = await api(`/v1/jobs/${encodeURIComponent(id)}/events`, { signal: controller.signal });
    if (!res.ok || !res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      // An event is its lines up to a blank line: `event: name` and `data: json` (comments and retry: are skipped).
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
        let event = 'message';
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length && on[event]) on[event](JSON.parse(data.join('\n')));
      }
    }
  })().catch(() => undefined); // aborted, or the server went away: the POST's answer says what happened
  return controller;
}

function openEvents(id) {
  const progress = $('progress');
  progress.dataset.events = '0';
  return followEvents(id, {
    queued: ({ position }) => {
      if (position > 0) setState('running', `Queued: ${position} ahead.`);
    },
    progress: (p) => {
      progress.max = p.total;
      progress.value = p.step;
      progress.dataset.events = String(Number(progress.dataset.events) + 1);
      progress.dataset.step = String(p.step);
      if (state.job && !state.job.cancelling)
        setState('running', `Step ${p.step}/${p.total} · ${(p.elapsedMs / 1000).toFixed(1)} s`);
      if (p.preview) {
        $('preview').src = p.preview;
        $('preview').hidden = false;
        $('image').hidden = true;
      }
    },
  });
}

async function generate(event) {
  event.preventDefault();
  if (!state.ready && !$('auth').hidden) $('api-key').focus();
  if (state.job || !state.ready) return;
  const s = settings();
  const id = newJobId();
  const job = { id, cancelling: false, started: performance.now() };
  state.job = job;
  $('generate').disabled = true;
  $('cancel').disabled = false;
  $('progress').value = 0;
  $('progress').max = s.steps;
  setState('running', 'Starting…');
  const events = openEvents(id);
  try {
    const res = await api('/v1/images/generations', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-job-id': id },
      body: JSON.stringify({ ...s, response_format: 'b64_json', preview: true }),
    });
    const body = await res.json();
    const seconds = (performance.now() - job.started) / 1000;
    if (res.ok) {
      const src = `data:image/png;base64,${body.data[0].b64_json}`;
      $('image').src = src;
      $('image').hidden = false;
      $('preview').hidden = true;
      $('caption').textContent = `${s.prompt} — ${describeSettings({ ...s, seed: body.seed })}`;
      $('download').href = src;
      $('download').download = `multilora-${body.seed}.png`;
      $('download').hidden = false;
      $('progress').value = $('progress').max;
      const t = body.timings;
      setState('done', `Done in ${seconds.toFixed(1)} s (${t.step_ms_mean} ms a step, ${t.queued_ms} ms queued).`);
      addHistory({ ...s, seed: body.seed }, src, seconds);
    } else if (body.error && body.error.code === 'ERR_CANCELLED') {
      setState('cancelled', `Cancelled at step ${$('progress').dataset.step || 0}/${s.steps}.`);
    } else {
      const e = body.error || { code: res.status, message: res.statusText };
      setState('error', `${e.code}: ${e.message}`, true);
    }
  } catch (err) {
    if (!(err instanceof Unauthorized)) setState('error', `The server did not answer: ${err.message}`, true);
  } finally {
    events.abort();
    state.job = null;
    $('generate').disabled = false;
    $('cancel').disabled = true;
  }
}

async function cancel() {
  const job = state.job;
  if (!job) return;
  job.cancelling = true;
  $('cancel').disabled = true;
  setState('cancelling', 'Cancelling…');
  try {
    const res = await api(`/v1/jobs/${encodeURIComponent(job.id)}`, { method: 'DELETE' });
    if (!res.ok && res.status !== 409) setState('error', `Could not cancel: HTTP ${res.status}`, true);
  } catch (err) {
    if (!(err instanceof Unauthorized)) setState('error', `Could not cancel: ${err.message}`, true);
  }
}

async function init() {
  try {
    const [status, loras] = await Promise.all([
      api('/v1/status').then((r) => r.json()),
      api('/v1/loras').then((r) => r.json()),
    ]);
    state.status = status;
    state.loras = loras.data;
    const { defaults, limits, model } = status;
    $('model').textContent = `${model.name} · ${model.class} · default ${defaults.width}×${defaults.height}`;
    fillSizes($('width'), limits.size, defaults.width);
    fillSizes($('height'), limits.size, defaults.height);
    $('steps').value = String(defaults.steps);
    $('steps').max = String(limits.steps.max);
    $('guidance').value = String(defaults.guidance_scale);
    $('guidance').max = String(limits.guidance_scale.max);
    renderLoras(loras.data);
    state.ready = true;
    setState('idle', 'Ready.');
  } catch (err) {
    if (!(err instanceof Unauthorized)) setState('error', `Cannot reach the server: ${err.message}`, true);
  }
}

/** The key field: kept for this tab only (sessionStorage), then the page tries again. */
function useKey(event) {
  event.preventDefault();
  const key = $('api-key').value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORE, key);
  $('api-key').value = '';
  $('auth').hidden = true;
  if (state.ready) setState('idle', 'Ready.');
  else init();
}

$('form').addEventListener('submit', generate);
$('auth').addEventListener('submit', useKey);
$('cancel').addEventListener('click', cancel);
$('randomize').addEventListener('click', () => {
  $('seed').value = String(Math.floor(Math.random() * 4294967296));
});
init();
