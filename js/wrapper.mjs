// The npm package's loader: the public `Skapi` class, a thin shell over the wasm module's, so
// that pages need no init call. It loads the module once, answers at once what needs no module,
// and — when a form is submitted before the module is ready — cancels the submit synchronously
// and keeps a copy of the form as the user left it (the rules that read it are the wasm's).

import { decodeProjectId, encodeProjectId } from './project-id.mjs';

const SNAPSHOT = '__skapiForm';

/**
 * A detached copy of a control that keeps what the user chose in it: its attributes, typed
 * text, checked state, chosen options and files, and whether it was disabled (by a fieldset
 * too). The wasm reads it like any control.
 */
function copy(el) {
  const c = el.cloneNode(el.localName === 'select');
  c.toggleAttribute('disabled', el.matches(':disabled'));
  if (el.localName === 'select') Array.from(el.options, (o, i) => (c.options[i].selected = o.selected));
  else if (el.type === 'file') c.files = el.files;
  else if (el.type === 'checkbox' || el.type === 'radio') c.checked = el.checked;
  else if (el.localName === 'textarea' || el.localName === 'input') c.value = el.value;
  return c;
}

/**
 * A form submitted before the wasm has loaded: the submit is prevented at once, and the form
 * copied as it is — a detached form holding a copy of each of its controls, in order (those
 * tied to it with `form=` too: `form.elements` has them), with its `action`.
 */
function snapshot(input) {
  let form = input;
  let submitter = null;
  if (typeof SubmitEvent !== 'undefined' && input instanceof SubmitEvent) {
    input.preventDefault();
    form = input.target;
    submitter = input.submitter || null;
  }
  if (typeof HTMLFormElement === 'undefined' || !(form instanceof HTMLFormElement)) return input;
  const kept = document.createElement('form');
  for (const el of form.elements) kept.append(copy(el));
  if (form.hasAttribute('action')) kept.setAttribute('action', form.getAttribute('action'));
  return { [SNAPSHOT]: true, form: kept, submitter: submitter && copy(submitter) };
}

/** A promise for a poll promise that is not made yet, with a `stop()` that reaches it. */
function deferredPoll(later) {
  let stopRequested = false;
  let inner = null;
  const outer = later.then((p) => {
    inner = p;
    if (stopRequested && typeof p?.stop === 'function') p.stop();
    return p;
  });
  outer.stop = () => {
    stopRequested = true;
    if (inner && typeof inner.stop === 'function') inner.stop();
  };
  return outer;
}

/** Where the ID a person typed for the docs' placeholder is kept, for this tab. */
const SAVED_ID = 'skapi:project_id';

/** True for the placeholder Skapi's docs write where the project ID goes (`<Project ID>`, and
 * the older `service_id`), however it is spaced or cased. */
function isPlaceholder(id) {
  const plain = typeof id === 'string' && id.trim().toLowerCase().replace(/^<|>$/g, '').replace(/[\s_.-]/g, '');
  return plain === 'projectid' || plain === 'serviceid';
}

function savedId(id) {
  try {
    if (id) sessionStorage.setItem(SAVED_ID, id);
    return sessionStorage.getItem(SAVED_ID);
  } catch {
    return null; // storage blocked (a sandboxed frame): the ID is asked again next time
  }
}

let asking = null;

/**
 * Asks the person at the page for the project ID (on the next task, once the code that made
 * the instance has run), until one decodes; every instance made meanwhile waits for the same
 * answer. Cancelling rejects with `Project ID is required.`.
 */
function askProjectId(placeholder, required) {
  return (asking ??= new Promise((resolve, reject) => setTimeout(() => {
    const ask = `Enter your project ID (this tab keeps it until it is closed). Replace "${placeholder}" in the code with it to stop this question.`;
    let message = `new Skapi() was given "${placeholder}" instead of a project ID.\n\n${ask}`;
    for (let answer = ''; ;) {
      answer = globalThis.prompt(message, answer);
      if (answer === null) return reject(required());
      answer = answer.trim();
      try {
        decodeProjectId(answer);
        savedId(answer);
        return resolve(answer);
      } catch {
        message = `"${answer}" is not a project ID.\n\n${ask}`;
      }
    }
  })).finally(() => (asking = null)));
}

export function isPollStopped(result) {
  return !!result && typeof result === 'object' && result.status === 'stopped';
}

/**
 * `load()` resolves with the wasm-bindgen module once it is initialised; `SkapiError` is the
 * SDK's error class.
 */
export function defineSkapi(load, SkapiError) {
  let loading = null;
  const module = () => (loading ??= load());

  return class Skapi {
    #inner = null;
    #ready;
    #service;
    #owner;
    #projectId;

    /**
     * `new Skapi(projectId, options?)`, or the older `new Skapi(service, owner, options?)`. The
     * docs' placeholder (`"<Project ID>"`) asks the person at the page for the ID (kept for the
     * tab), and calls wait for the answer.
     */
    constructor(id, ownerOrOptions, options) {
      const required = () => new SkapiError('Project ID is required.', 'INVALID_PARAMETER', 'Skapi');
      let ask = false;
      if (typeof ownerOrOptions === 'string') {
        this.#service = id;
        this.#owner = ownerOrOptions;
        this.#projectId = encodeProjectId(id, ownerOrOptions);
      } else {
        options = ownerOrOptions;
        if (isPlaceholder(id)) {
          // The ID typed earlier in this tab, if it still decodes; else the person is asked.
          ask = !this.#decode(savedId());
          if (ask && typeof globalThis.prompt !== 'function') throw required();
        } else if (id === undefined || id === null || id === '') {
          throw required();
        } else if (!this.#decode(id)) {
          throw new SkapiError('Service ID is invalid.', 'INVALID_PARAMETER', 'Skapi');
        }
      }
      const answered = ask ? askProjectId(id, required).then((answer) => this.#decode(answer)) : Promise.resolve();
      this.#ready = answered.then(module).then((m) => (this.#inner = new m.Skapi(this.#service, this.#owner, options)));
      this.#ready.catch(() => {}); // reported by the calls that wait for it
    }

    /** Takes the service and owner project ID `id` stands for; false when it does not decode. */
    #decode(id) {
      try {
        ({ service: this.#service, owner: this.#owner } = decodeProjectId(id));
        this.#projectId = id;
        return true;
      } catch {
        return false;
      }
    }

    get service() { return this.#service; }
    get owner() { return this.#owner; }
    // Skapi's own name for it (snake case, as in Skapi's SDK).
    get project_id() { return this.#projectId; }
    get user() { return this.#inner ? this.#inner.user : null; }

    #call(name, args) {
      return this.#inner ? this.#inner[name](...args) : this.#ready.then((inner) => inner[name](...args));
    }

    /**
     * A call whose promise may be a poll (with `stop()`): straight to the module once it is
     * ready; before that, a form given first is copied now and the poll reached through
     * [`deferredPoll`].
     */
    #poll(name, first, ...rest) {
      if (this.#inner) return this.#inner[name](first, ...rest);
      const frozen = snapshot(first);
      return deferredPoll(this.#ready.then((inner) => inner[name](frozen, ...rest)));
    }

    clientSecretRequest(params) { return this.#poll('clientSecretRequest', params); }
    forwardRequest(form, options) { return this.#poll('forwardRequest', form, options); }
    clientSecretRequestStream(requestId, options) { return this.#poll('clientSecretRequestStream', requestId, options); }

    clientSecretRequestFinalize(requestId, data, options) { return this.#call('clientSecretRequestFinalize', [requestId, data, options]); }
    clientSecretRequestHistory(params, fetchOptions) { return this.#call('clientSecretRequestHistory', [params, fetchOptions]); }
    cancelClientSecretRequest(params) { return this.#call('cancelClientSecretRequest', [params]); }
    clientSecretRequestQueueCount(params) { return this.#call('clientSecretRequestQueueCount', [params]); }
    loginWithToken(params) { return this.#call('loginWithToken', [params]); }
    logout() { return this.#call('logout', []); }
    getFormResponse() { return this.#call('getFormResponse', []); }
    stopClientSecretPolling(params) { return this.#inner ? this.#inner.stopClientSecretPolling(params) : 0; }
    isPollStopped(result) { return isPollStopped(result); }
    activePolls() { return this.#inner ? this.#inner.activePolls() : 0; }

    // Skapi's current names for the same functions (one registry of polls, one history).
    forwardRequestStream(requestId, options) { return this.clientSecretRequestStream(requestId, options); }
    forwardRequestFinalize(requestId, data, options) { return this.clientSecretRequestFinalize(requestId, data, options); }
    forwardRequestHistory(params, fetchOptions) { return this.clientSecretRequestHistory(params, fetchOptions); }
    cancelForwardRequest(params) { return this.cancelClientSecretRequest(params); }
    stopForwardRequestPolling(params) { return this.stopClientSecretPolling(params); }
    forwardRequestQueueCount(params) { return this.clientSecretRequestQueueCount(params); }
  };
}
