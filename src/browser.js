// Every browser call the SDK makes, in one JavaScript module (the Rust side: src/error.rs,
// polls.rs, client.rs, timer.rs, identity.rs, form.rs). In JavaScript because each DOM, fetch
// or storage property read through web-sys costs the wasm an import shim; here the same rules
// cost a few hundred bytes. One module rather than one per concern: wasm-bindgen makes each a
// file the page loads, and fewer files load faster (and in wasm-bindgen's test runner, several
// module files loading at once can stall its server).

// ---- errors (src/error.rs)

export class SkapiError extends Error {
  constructor(message, code, name, statusCode, body) {
    super(message);
    this.name = name;
    this.code = code;
    if (statusCode !== undefined) this.status_code = statusCode;
    if (body !== undefined) this.body = body;
  }
}

export function makeSkapiError(message, code, name, statusCode, body) {
  return new SkapiError(message, code, name, statusCode, body);
}

// ---- requests (src/request.rs)

/**
 * Where `data` holds a File, Blob, ArrayBuffer or typed array — `data`, `data[file]`,
 * `data[list][0]` — or undefined. JSON.stringify would send such a value as `{}`.
 */
export function bytesAt(value, path = 'data', depth = 0) {
  if (value === null || typeof value !== 'object' || depth > 32) return undefined;
  if (isBytes(value)) return path;
  for (const key of Object.keys(value)) {
    const found = bytesAt(value[key], `${path}[${key}]`, depth + 1);
    if (found) return found;
  }
  return undefined;
}

const isBytes = (v) => (typeof Blob !== 'undefined' && v instanceof Blob) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);

/**
 * `data` with each file or bytes in it replaced by a marker `{"skapi:file": n}` (as
 * skapi_core::upload reads it), and the files as Blobs: `[marked data, files]`.
 */
export function takeFiles(data) {
  const files = [];
  const walk = (value, depth) => {
    if (isBytes(value)) {
      files.push(value instanceof Blob ? value : new Blob([value]));
      return { 'skapi:file': files.length - 1 };
    }
    if (value === null || typeof value !== 'object' || depth > 32) return value;
    if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1));
    const copy = {};
    for (const key of Object.keys(value)) own(copy, key, walk(value[key], depth + 1));
    return copy;
  };
  return [walk(data, 0), files];
}

/** Whether `headers` ask for `multipart/form-data`. */
export function isMultipart(headers) {
  if (!headers || typeof headers !== 'object') return false;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === 'content-type');
  return key !== undefined && /^\s*multipart\/form-data\s*(;|$)/i.test(String(headers[key]));
}

/** `[base64, content type]` of a Blob, ArrayBuffer or typed array (the Blob's type, or ''). */
export async function base64Of(value) {
  const blob = value instanceof Blob ? value : new Blob([value]);
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return [btoa(binary), blob.type];
}

// ---- the logged-in user (src/lib.rs)

export function userOf(claims) {
  return { ...claims, user_id: claims.sub };
}

// ---- polls (src/polls.rs)

/** `stop()` is one long-lived function per client called with the poll's token: no closure per poll's state. */
export function attachStop(p, stop, token) {
  p.stop = () => stop(token, false);
  return p;
}

/**
 * A final answer as `type` asks: bytes kept as `{body_b64, body_content_type}` become an
 * ArrayBuffer, a Blob of that type, or their UTF-8 text; other answers their text as bytes.
 */
export function shapeAnswer(answer, type) {
  if (type === 'json') return answer;
  const binary = answer !== null && typeof answer === 'object' && typeof answer.body_b64 === 'string' && typeof answer.body_content_type === 'string';
  const text = typeof answer === 'string' ? answer : JSON.stringify(answer);
  const bytes = binary ? Uint8Array.from(atob(answer.body_b64), (c) => c.charCodeAt(0)) : new TextEncoder().encode(text);
  if (type === 'arrayBuffer') return bytes.buffer;
  if (type === 'blob') return new Blob([bytes], { type: binary ? answer.body_content_type : typeof answer === 'string' ? 'text/plain' : 'application/json' });
  return binary ? new TextDecoder().decode(bytes) : text;
}

export function watchAbort(signal, stop, token) {
  signal.addEventListener('abort', () => stop(token, true), { once: true });
}

/** `promise`, or a rejection with `error` as soon as `signal` aborts. */
export function abortable(promise, signal, error) {
  if (!signal || typeof signal !== 'object') return promise;
  if (signal.aborted) return Promise.reject(error);
  return new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => reject(error), { once: true });
    promise.then(resolve, reject);
  });
}

export function stopped(id) {
  return { id: id ?? null, status: 'stopped' };
}

// ---- queues (src/turns.rs)

/**
 * The next turn of `queue`, whose last turn's promise `tails` keeps: [the previous turn's
 * promise or undefined, end(waited)]. A turn that ends before it waited passes its place on
 * only once the previous turn has ended.
 */
export function takeTurn(tails, queue) {
  const previous = tails.get(queue);
  let resolve;
  const mine = new Promise((r) => (resolve = r));
  tails.set(queue, mine);
  const end = (waited) => {
    if (waited || !previous) resolve();
    else previous.then(resolve);
    if (tails.get(queue) === mine) tails.delete(queue);
  };
  return [previous, end];
}

// ---- history (src/history.rs)

export function historyPage(list, startKey, endOfList, startKeyHistory, pending) {
  return { list, startKey, endOfList, startKeyHistory, pending };
}

// ---- the transport (src/client.rs)

/** JSON text as a value; text that is not JSON as itself, and no text as null. */
function parse(text) {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * GET `url` (`body` undefined), or POST `body` as JSON with Skapi's headers — with `files`,
 * as multipart: the JSON in part `request`, then each file; resolves [status, the answer
 * parsed, Retry-After].
 */
export function call(url, body, meta, idToken, accessToken, files) {
  const init = body === undefined ? undefined : post(body, meta, idToken, accessToken, '*/*');
  if (init && files) {
    // The browser writes the multipart Content-Type, with its boundary.
    delete init.headers['Content-Type'];
    init.body = new FormData();
    init.body.append('request', JSON.stringify(body));
    for (const file of files) init.body.append('file', file, file.name || 'blob');
  }
  return fetch(url, init).then((r) => r.text().then((text) => [r.status, parse(text), r.headers.get('retry-after')]));
}

/** A POST of `body` as JSON with Skapi's headers. */
function post(body, meta, idToken, accessToken, accept) {
  const headers = { 'Content-Type': 'application/json', Accept: accept, 'Content-Meta': meta };
  if (idToken) headers.Authorization = idToken;
  if (accessToken) headers['X-Access-Token'] = accessToken;
  return { method: 'POST', headers, body: JSON.stringify(body) };
}

// ---- server-sent events (src/stream.rs)

/**
 * POSTs `body` asking for server-sent events: resolves a reader of them for `nextEvents`, or
 * null when the answer is no event stream (an error, a server without push) or the network failed.
 */
export function openEvents(url, body, meta, idToken) {
  const abort = new AbortController();
  const init = { ...post(body, meta, idToken, undefined, 'text/event-stream'), signal: abort.signal };
  return fetch(url, init).then(
    (r) => {
      if (r.ok && r.body && (r.headers.get('content-type') || '').startsWith('text/event-stream')) {
        return { reader: r.body.getReader(), decoder: new TextDecoder(), buffer: '', abort };
      }
      abort.abort();
      return null;
    },
    () => null,
  );
}

/**
 * The events that have arrived, as soon as there is one: [[event, data parsed as JSON]…];
 * null once the connection has ended. Rejects when it breaks.
 */
export async function nextEvents(events) {
  for (;;) {
    const found = [];
    let boundary;
    while ((boundary = /\r?\n\r?\n/.exec(events.buffer))) {
      const block = events.buffer.slice(0, boundary.index);
      events.buffer = events.buffer.slice(boundary.index + boundary[0].length);
      let name = 'message';
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5));
      }
      if (data.length) found.push([name, JSON.parse(data.join('\n'))]);
    }
    if (found.length) return found;
    const { done, value } = await events.reader.read();
    if (done) return null;
    events.buffer += events.decoder.decode(value, { stream: true });
  }
}

export function closeEvents(events) {
  events.abort.abort();
}

/** `n` random letters and digits (a stream's minted queue name). */
export function randomAlphanumerics(n) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return Array.from(randomBytes(n), (b) => alphabet[b % 62]).join('');
}

/** What a finished stream resolves with. */
export function streamResult(id, status, statusCode, lastSeq, error, truncated) {
  const result = { id, status, status_code: statusCode ?? null, stream: true, last_seq: lastSeq };
  if (error !== undefined) result.error = error;
  if (truncated) result.truncated = true;
  return result;
}

// ---- timers (src/timer.rs)

/** A promise resolved after `ms`, and the timer's handle for clearTimeout. */
export function after(ms) {
  let handle;
  const done = new Promise((resolve) => (handle = setTimeout(resolve, ms)));
  return [done, handle];
}

export function cancel(handle) {
  clearTimeout(handle);
}

// ---- storage (the public identifier and forms)

/** `localStorage` or `sessionStorage`, or null where storage is disabled (privacy settings, sandboxed frames). */
function storage(name) {
  try {
    return globalThis[name];
  } catch {
    return null;
  }
}

// ---- the public identifier (src/identity.rs): localStorage and random bytes

function randomBytes(n) {
  const bytes = new Uint8Array(n);
  if (globalThis.crypto?.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < n; i++) bytes[i] = Math.floor(Math.random() * 256); // no Web Crypto: very old hosts
  return bytes;
}

/** The identifier stored under `key`, or a fresh one (128 random bits as hex) kept there. */
export function publicIdentifier(key) {
  const local = storage('localStorage');
  const existing = local?.getItem(key);
  if (existing && /^[0-9a-fA-F]{32}$/.test(existing)) return existing;
  const fresh = Array.from(randomBytes(16), (b) => b.toString(16).padStart(2, '0')).join('');
  try {
    local?.setItem(key, fresh);
  } catch {
    // Full storage: the identifier lasts this page's life.
  }
  return fresh;
}

// ---- forms (src/form.rs): which controls of a form count, and their values; the nesting of
// names stays in Rust (skapi-core)

const SNAPSHOT = '__skapiFormSnapshot';

/**
 * A control's fields by HTML's rules, as [name, value, many] (`many`: a `<select multiple>` or
 * `<input type=file multiple>`); a file's value is the File.
 */
function control(el, out) {
  const name = el.name;
  if (!name || el.matches(':disabled')) return;
  const tag = el.localName;
  if (tag === 'input') {
    const type = el.type.toLowerCase();
    if (type === 'file') {
      // Each chosen file, as FormData would (an input with none chosen is left out).
      for (const file of el.files) out.push([name, file, el.multiple]);
      return;
    }
    if (type === 'submit' || type === 'image' || type === 'button' || type === 'reset') return;
    if (type === 'checkbox') {
      // Without a value attribute a checkbox says whether it is checked (as skapi-js).
      if (!el.hasAttribute('value')) out.push([name, el.checked, false]);
      else if (el.checked) out.push([name, el.value, false]);
    } else if (type === 'radio') {
      if (el.checked) out.push([name, el.value, false]);
    } else if (type === 'number' || type === 'range') {
      if (el.value !== '' && Number.isFinite(el.valueAsNumber)) out.push([name, el.valueAsNumber, false]);
    } else {
      out.push([name, el.value, false]);
    }
  } else if (tag === 'select') {
    if (el.multiple) for (const option of el.selectedOptions) out.push([name, option.value, true]);
    else if (el.selectedIndex >= 0) out.push([name, el.value, false]);
  } else if (tag === 'textarea') {
    out.push([name, el.value, false]);
  }
  // <button>, <fieldset>, <output>, <object>: not values (the submitter is added apart).
}

function formFields(form, submitter) {
  const fields = [];
  for (const el of form.elements) control(el, fields);
  // HTML's rule: of the buttons, only the one that submitted the form counts.
  if (submitter && submitter.name && !submitter.matches(':disabled')) fields.push([submitter.name, submitter.value ?? '', false]);
  // `form.action` is the attribute resolved against the page's URL.
  return { fields, action: form.getAttribute('action') === null ? null : form.action };
}

const isForm = (v) => typeof HTMLFormElement !== 'undefined' && v instanceof HTMLFormElement;

/**
 * The form behind `input` — a submit event (its default prevented here, synchronously), a
 * form, FormData, or a snapshot the loader took while the module loaded — as `{fields,
 * action}`; `undefined` when `input` is no form.
 */
export function readForm(input) {
  if (typeof SubmitEvent !== 'undefined' && input instanceof SubmitEvent) {
    input.preventDefault();
    return isForm(input.target) ? formFields(input.target, input.submitter) : undefined;
  }
  if (isForm(input)) return formFields(input, null);
  if (typeof FormData !== 'undefined' && input instanceof FormData) {
    const fields = [];
    for (const [name, value] of input) {
      // An empty file input makes an unnamed empty file: left out, as from a form.
      if (typeof value === 'string' || value.name !== '' || value.size > 0) fields.push([name, value, false]);
    }
    return { fields, action: null };
  }
  if (input && typeof input === 'object' && input[SNAPSHOT]) {
    return isForm(input.form) ? formFields(input.form, input.submitter || null) : undefined;
  }
  return undefined;
}

/** Defines, never assigns: a field named `__proto__[x]` becomes an own property `__proto__`. */
export function own(o, k, v) {
  Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
}

const withoutQuery = (url) => url.split(/[?#]/)[0];

/** Once `sent` resolves, keeps its response for the action page (under `prefix` + its URL) and goes there. */
export function goToActionAfter(sent, prefix, action) {
  return sent.then((response) => {
    try {
      storage('sessionStorage')?.setItem(prefix + withoutQuery(action), JSON.stringify(response));
    } catch {
      // Full or unavailable storage: the page still goes on.
    }
    if (location.href === action) location.replace(action);
    else location.href = action;
    return response;
  });
}

/** The response a form with an `action` left for this page, once; `null` otherwise. */
export function takeResponse(prefix) {
  const store = storage('sessionStorage');
  const key = prefix + withoutQuery(location.href);
  const text = store?.getItem(key);
  if (text == null) return null;
  store.removeItem(key);
  return parse(text);
}
