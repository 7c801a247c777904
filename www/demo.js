// The demo page: follows what the seed's form started (status, picture, history), plus a
// GET-style API and a queue. Everything goes through `skapi` (see index.html).
const $ = (selector) => document.querySelector(selector);
const API = {
  'stand-in': `${location.origin}/demo-api/v1/images/generations`,
  openai: 'https://api.openai.com/v1/images/generations',
};
const CHAT_API = {
  'stand-in': `${location.origin}/demo-api/v1/chat/completions`,
  openai: 'https://api.openai.com/v1/chat/completions',
};
const SPEECH_API = {
  'stand-in': `${location.origin}/demo-api/v1/audio/transcriptions`,
  openai: 'https://api.openai.com/v1/audio/transcriptions',
};
const form = $('#seed-form');
const uploadForm = $('#upload-form');
const apiKey = 'skapi-demo-api';

function imageUrl() {
  return form.elements.url.value;
}

function chooseApi(choice) {
  form.elements.url.value = API[choice] || API['stand-in'];
  chatUrl = CHAT_API[choice] || CHAT_API['stand-in'];
  uploadForm.elements.url.value = SPEECH_API[choice] || SPEECH_API['stand-in'];
  localStorage.setItem(apiKey, choice);
  for (const radio of document.querySelectorAll('input[name=api]')) radio.checked = radio.value === choice;
}

function describeError(e) {
  const status = e.status_code ? ` (the API answered ${e.status_code})` : '';
  return `${e.code || 'ERROR'}: ${e.message}${status}`;
}

function setStatus(text, kind = '') {
  const el = $('#status');
  el.textContent = text;
  el.className = `status ${kind}`;
}

function pictures(body) {
  const data = body && Array.isArray(body.data) ? body.data : [];
  return data.map((d) => (d.b64_json ? `data:image/png;base64,${d.b64_json}` : d.url)).filter(Boolean);
}

function showPictures(body, alt) {
  const result = $('#result');
  const srcs = pictures(body);
  if (!srcs.length) {
    result.innerHTML = '<span class="placeholder">The API answered without a picture.</span>';
    return;
  }
  result.replaceChildren(...srcs.map((src) => Object.assign(document.createElement('img'), { src, alt })));
}

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '—';
}

const STATUS_TEXT = { pending: 'Waiting', running: 'Generating', resolved: 'Done', failed: 'Failed', stopped: 'Stopped' };

/** Shows where a request stands until it finishes (the history says pending or running). */
async function watchStatus(id, queuePosition) {
  let position = queuePosition;
  const started = Date.now();
  while (true) {
    let item = null;
    try {
      const page = await skapi.clientSecretRequestHistory({ url: imageUrl(), method: 'POST' }, { limit: 20 });
      item = page.list.find((i) => i.id === id);
    } catch { /* the next tick tries again */ }
    if (!item || item.status === 'resolved' || item.status === 'failed') return;
    const seconds = Math.round((Date.now() - started) / 1000);
    if (item.status === 'pending') {
      setStatus(position > 1 ? `Queued — position ${position} in "image-jobs" (${seconds} s)…` : `Waiting for the image API (${seconds} s)…`, 'busy');
      position = Math.max(1, position - 1);
    } else {
      setStatus(`Generating — the image API is working (${seconds} s)…`, 'busy');
    }
    await new Promise((r) => setTimeout(r, 700));
  }
}

const demo = {
  /** What the seed form's promise resolved with: a pending request to follow. */
  async track(request) {
    form.querySelector('[type=submit]').disabled = true;
    try {
      if (!request || !request.poll) {
        showPictures(request, form.elements['data[prompt]'].value);
        return;
      }
      setStatus(request.in_queue > 1 ? `Queued — position ${request.in_queue}…` : 'Sent — waiting for the image API…', 'busy');
      const watching = watchStatus(request.id, request.in_queue || 1);
      const body = await request.poll({ latency: 700 });
      await watching;
      showPictures(body, form.elements['data[prompt]'].value);
      setStatus('Done — the picture came back through skapi-server.', 'ok');
    } catch (e) {
      demo.fail(e);
    } finally {
      form.querySelector('[type=submit]').disabled = false;
      loadHistory();
    }
  },

  fail(e) {
    setStatus(`Failed — ${describeError(e)}`, 'bad');
    form.querySelector('[type=submit]').disabled = false;
  },

  /** What the upload form's promise resolved with (it polls): the speech API's answer. */
  transcribed(answer) {
    const status = $('#upload-status');
    status.textContent = 'Done — the file went through skapi-server.';
    status.className = 'status ok';
    $('#transcript').textContent = answer && typeof answer.text === 'string' ? answer.text : JSON.stringify(answer);
  },

  /** The url the image forms go to (the API chosen above). */
  imageUrl,

  /** The forwardRequest form was sent (its promise resolves once the picture is back). */
  forwarding() {
    const status = $('#forward-status');
    status.textContent = 'Sent — waiting for the image API…';
    status.className = 'status busy';
  },

  /** What `forwardRequest(event, {…, poll})` resolved with: the image API's answer. */
  forwarded(body) {
    const status = $('#forward-status');
    const srcs = pictures(body);
    $('#forward-result').replaceChildren(...srcs.map((src) => Object.assign(document.createElement('img'), { src, alt: $('#forward-prompt').value })));
    status.textContent = srcs.length ? 'Done — sent with forwardRequest, the key put in by skapi-server.' : 'Done, but no picture came back.';
    status.className = srcs.length ? 'status ok' : 'status bad';
    loadHistory();
  },

  forwardFailed(e) {
    const status = $('#forward-status');
    status.textContent = `Failed — ${describeError(e)}`;
    status.className = 'status bad';
  },

  uploadFailed(e) {
    const status = $('#upload-status');
    status.textContent = `Failed — ${describeError(e)}`;
    status.className = 'status bad';
  },
};
// The demo key's request rules allow one image a request (docs/paid-keys.md): this shows the refusal.
$('#forward-two').addEventListener('click', () => {
  demo.forwarding();
  skapi.forwardRequest({ prompt: $('#forward-prompt').value }, {
    secretName: 'openai',
    url: imageUrl(),
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer $CLIENT_SECRET' },
    data: { model: 'gpt-image-1.5', n: 2, size: '1024x1024' },
    poll: 700,
  }).then((r) => demo.forwarded(r), (e) => demo.forwardFailed(e));
});
uploadForm.addEventListener('submit', () => {
  const status = $('#upload-status');
  status.textContent = 'Uploading…';
  status.className = 'status busy';
});
window.demo = demo;

function historyItem(item) {
  const li = document.createElement('li');
  li.dataset.id = item.id;
  const thumb = document.createElement('div');
  thumb.className = 'thumb';
  const src = item.status === 'resolved' ? pictures(item.response_body)[0] : null;
  if (src) thumb.append(Object.assign(document.createElement('img'), { src, alt: '' }));
  const text = document.createElement('div');
  const prompt = document.createElement('p');
  prompt.className = 'prompt';
  prompt.textContent = item.request_body?.prompt ?? '(no prompt)';
  const meta = document.createElement('p');
  meta.className = 'meta';
  const badge = document.createElement('span');
  badge.className = `badge ${item.status}`;
  badge.textContent = STATUS_TEXT[item.status] || item.status;
  meta.append(badge, ` ${time(item.created)}`);
  if (item.status === 'failed' && item.error) meta.append(` — ${item.error.code}: ${item.error.message}`);
  text.append(prompt, meta);
  li.append(thumb, text);
  return li;
}

let historyRun = 0;
async function loadHistory() {
  const run = ++historyRun;
  try {
    const page = await skapi.clientSecretRequestHistory({ url: imageUrl(), method: 'POST', poll: 1000 }, { limit: 12 });
    if (run !== historyRun) return;
    $('#history').replaceChildren(...page.list.map(historyItem));
    $('#history-empty').hidden = page.list.length > 0;
    // Unfinished requests (after a reload too) are polled; each shows up once it ends.
    for (const pending of page.pending) {
      pending.then((item) => {
        if (run !== historyRun || !item || !item.id) return;
        $(`#history li[data-id="${CSS.escape(item.id)}"]`)?.replaceWith(historyItem(item));
      }, () => {});
    }
  } catch (e) {
    $('#history-empty').hidden = false;
    $('#history-empty').textContent = `Could not load the history: ${describeError(e)}`;
  }
}

$('#geo-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const out = $('#geo-result');
  out.textContent = 'Looking up…';
  try {
    const answer = await skapi.clientSecretRequest({
      clientSecretName: 'maps',
      url: `${location.origin}/demo-api/geo`,
      method: 'GET',
      params: { key: '$CLIENT_SECRET', q: event.target.elements.q.value },
      poll: 300,
    });
    out.textContent = JSON.stringify(answer, null, 2);
  } catch (e) {
    out.textContent = describeError(e);
  }
});

$('#pair').addEventListener('click', async () => {
  const button = $('#pair');
  button.disabled = true;
  const url = `${location.origin}/demo-api/geo`;
  const rows = { A: $('[data-row=A]'), B: $('[data-row=B]') };
  for (const row of Object.values(rows)) {
    for (const cell of row.querySelectorAll('.st, .t0, .t1')) cell.textContent = '—';
    delete row.dataset.started;
    delete row.dataset.finished;
    delete row.dataset.status;
  }
  try {
    // Sent at once, without polling, so both wait on the server's queue.
    const sent = await Promise.all(['A', 'B'].map((name) => skapi.clientSecretRequest({
      clientSecretName: 'maps', url, method: 'GET', queue: 'pair',
      params: { key: '$CLIENT_SECRET', q: `request ${name}`, delay: 1500 },
    })));
    const ids = { A: sent[0].id, B: sent[1].id };
    let done = false;
    while (!done) {
      const page = await skapi.clientSecretRequestHistory({ url, method: 'GET', queue: 'pair' }, { limit: 10 });
      done = true;
      for (const name of ['A', 'B']) {
        const item = page.list.find((i) => i.id === ids[name]);
        if (!item) continue;
        const row = rows[name];
        row.querySelector('.st').textContent = STATUS_TEXT[item.status] || item.status;
        row.dataset.status = item.status;
        if (item.status === 'running' && !row.dataset.started) {
          row.dataset.started = item.updated; // when it left the queue
          row.querySelector('.t0').textContent = time(item.updated);
        }
        if (item.status === 'resolved' || item.status === 'failed') {
          row.dataset.finished = item.updated;
          row.querySelector('.t1').textContent = time(item.updated);
        } else {
          done = false;
        }
      }
      if (!done) await new Promise((r) => setTimeout(r, 250));
    }
  } catch (e) {
    rows.A.querySelector('.st').textContent = describeError(e);
  } finally {
    button.disabled = false;
  }
});

// ---- the chat card: a streamed answer, resumed after a reload

let chatUrl = CHAT_API['stand-in'];

/** The words of OpenAI's streamed events (`data: {choices:[{delta:{content}}]}`), from the text received so far. */
function chatText(raw) {
  let text = '';
  for (const line of raw.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    try {
      text += JSON.parse(line.slice(6)).choices?.[0]?.delta?.content ?? '';
    } catch { /* an event cut at the end of what has arrived: the next chunk completes it */ }
  }
  return text;
}

function setChatStatus(text, kind = '') {
  $('#chat-status').textContent = text;
  $('#chat-status').className = `status ${kind}`;
}

/** Follows a stream (started here, or found after a reload) until it ends; `reading` is its promise. */
async function followChat(reading, raw) {
  const button = $('#chat-form button');
  button.disabled = true;
  try {
    const result = await reading;
    if (result.status === 'resolved') setChatStatus(`Done — ${result.last_seq} pieces, ${raw.via === 'push' ? 'pushed as they were written' : 'polled'}.`, 'ok');
    else if (result.status === 'failed') setChatStatus(`Failed — ${result.error ? describeError(result.error) : 'the API stopped answering'}`, 'bad');
    if (!raw.value) $('#chat-answer').textContent = '(no answer)';
  } catch (e) {
    setChatStatus(`Failed — ${describeError(e)}`, 'bad');
  } finally {
    button.disabled = false;
  }
}

/** An onStream that renders the answer as it grows. */
function chatRenderer(raw) {
  return (chunk, seq, via) => {
    raw.value += chunk;
    raw.via = via;
    $('#chat-answer').textContent = chatText(raw.value);
    $('#chat-answer').dataset.seq = seq;
    setChatStatus(`Writing… (${seq} pieces, ${via === 'push' ? 'pushed' : 'polled'})`, 'busy');
  };
}

$('#chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const prompt = event.target.elements.prompt.value;
  const raw = { value: '' };
  $('#chat-answer').textContent = '';
  setChatStatus('Sent — waiting for the first words…', 'busy');
  const reading = skapi.clientSecretRequest({
    clientSecretName: 'openai',
    url: chatUrl,
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer $CLIENT_SECRET' },
    data: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt }] },
    stream: true,
    onStream: chatRenderer(raw),
  });
  followChat(reading, raw);
});

/** After a reload: an answer still being written (the history knows it) is read again from its first piece. */
async function resumeChat() {
  const page = await skapi.clientSecretRequestHistory({ url: chatUrl, method: 'POST' }, { limit: 5 }).catch(() => null);
  const unfinished = page?.list.find((item) => item.status === 'pending' || item.status === 'running');
  if (!unfinished) return;
  $('#chat-prompt').value = unfinished.request_body?.messages?.at(-1)?.content ?? '';
  $('#chat-answer').textContent = '';
  setChatStatus('Resuming the answer…', 'busy');
  const raw = { value: '' };
  const reading = skapi.clientSecretRequestStream(unfinished.id, { url: chatUrl, method: 'POST', onStream: chatRenderer(raw) });
  followChat(reading, raw);
}

$('#refresh').addEventListener('click', loadHistory);
for (const radio of document.querySelectorAll('input[name=api]')) {
  radio.addEventListener('change', () => { chooseApi(radio.value); loadHistory(); });
}
chooseApi(localStorage.getItem(apiKey) || 'stand-in');
loadHistory();
resumeChat();
