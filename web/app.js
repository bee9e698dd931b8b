// The page of `multilora serve`: no build step, no dependencies. It talks to the API that docs/openapi.json describes.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { status: null, loras: [], job: null, history: [] };

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
    if (row.querySelector('input[type=checkbox]').checked) loras[row.dataset.name] = Number(row.querySelector('input[type=range]').value);
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
  const loras = Object.entries(s.loras).map(([n, a]) => `${n} ${a}`).join(', ') || 'no LoRA';
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

function openEvents(id) {
  const progress = $('progress');
  progress.dataset.events = '0';
  const es = new EventSource(`/v1/jobs/${encodeURIComponent(id)}/events`);
  es.addEventListener('queued', (e) => {
    const { position } = JSON.parse(e.data);
    if (position > 0) setState('running', `Queued: ${position} ahead.`);
  });
  es.addEventListener('progress', (e) => {
    const p = JSON.parse(e.data);
    progress.max = p.total;
    progress.value = p.step;
    progress.dataset.events = String(Number(progress.dataset.events) + 1);
    progress.dataset.step = String(p.step);
    if (state.job && !state.job.cancelling) setState('running', `Step ${p.step}/${p.total} · ${(p.elapsedMs / 1000).toFixed(1)} s`);
    if (p.preview) {
      $('preview').src = p.preview;
      $('preview').hidden = false;
      $('image').hidden = true;
    }
  });
  for (const end of ['done', 'cancelled']) es.addEventListener(end, () => es.close());
  es.addEventListener('error', (e) => {
    if (e.data || es.readyState === EventSource.CLOSED) es.close();
  });
  return es;
}

async function generate(event) {
  event.preventDefault();
  if (state.job) return;
  const s = settings();
  const id = newJobId();
  const job = { id, cancelling: false, started: performance.now() };
  state.job = job;
  $('generate').disabled = true;
  $('cancel').disabled = false;
  $('progress').value = 0;
  $('progress').max = s.steps;
  setState('running', 'Starting…');
  const es = openEvents(id);
  try {
    const res = await fetch('/v1/images/generations', {
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
    setState('error', `The server did not answer: ${err.message}`, true);
  } finally {
    es.close();
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
  const res = await fetch(`/v1/jobs/${encodeURIComponent(job.id)}`, { method: 'DELETE' });
  if (!res.ok && res.status !== 409) setState('error', `Could not cancel: HTTP ${res.status}`, true);
}

async function init() {
  try {
    const [status, loras] = await Promise.all([
      fetch('/v1/status').then((r) => r.json()),
      fetch('/v1/loras').then((r) => r.json()),
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
    setState('idle', 'Ready.');
  } catch (err) {
    setState('error', `Cannot reach the server: ${err.message}`, true);
  }
}

$('form').addEventListener('submit', generate);
$('cancel').addEventListener('click', cancel);
$('randomize').addEventListener('click', () => {
  $('seed').value = String(Math.floor(Math.random() * 4294967296));
});
init();
