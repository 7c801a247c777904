// The dashboard: a thin client of skapi-server's admin API (/admin/…), with the admin token kept
// in sessionStorage for this tab only.
const $ = (selector) => document.querySelector(selector);
const tokenKey = 'skapi-admin-token';
let token = sessionStorage.getItem(tokenKey) || '';
let editing = null; // the key being edited, or null when adding

class AdminError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

async function admin(method, path, body) {
  const response = await fetch(`/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = JSON.parse(text); } catch { /* not JSON */ }
  if (!response.ok) {
    throw new AdminError(data?.message || text || `The server answered ${response.status}.`, data?.code, response.status);
  }
  return data;
}

function showError(target, error) {
  const el = $(target);
  el.textContent = error ? (error.code ? `${error.code}: ${error.message}` : error.message) : '';
  el.hidden = !error;
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** "3 resolved, 1 THIRD_PARTY_ERROR · last used 2 min ago", from this server's counts. */
function usageText(usage) {
  if (!usage || (!usage.last_used && !Object.keys(usage.last_hour).length)) return 'not used yet';
  const outcomes = Object.entries(usage.last_hour).map(([outcome, n]) => `${n} ${outcome}`).join(', ') || 'no requests';
  if (!usage.last_used) return outcomes;
  const minutes = Math.round((Date.now() - usage.last_used) / 60000);
  return `${outcomes} · last used ${minutes < 1 ? 'just now' : `${minutes} min ago`}`;
}

/** "4 / 50 requests · 280 / 1000 tokens": today's use (UTC, every instance) against the key's
 * totals, for a key with a daily quota or token budget. */
function todayText(key, usage) {
  const today = usage?.today;
  if (!today) return 'no daily limit';
  const of = (n, total, unit) => `${n}${total ? ` / ${total}` : ''} ${unit}`;
  return `${of(today.requests, key.daily_total, 'requests')} · ${of(today.tokens, key.daily_tokens_total, 'tokens')}`;
}

function render(keys, usage = []) {
  const body = $('#keys tbody');
  body.replaceChildren();
  for (const key of keys) {
    const tr = document.createElement('tr');
    const used = usage.find((u) => u.service === key.service && u.name === key.name);
    const limits = [
      key.rate_per_caller ? `${key.rate_per_caller} / caller` : null,
      key.rate_total ? `${key.rate_total} total` : null,
      key.daily_per_caller ? `${key.daily_per_caller} / caller / day` : null,
      key.daily_total ? `${key.daily_total} / day` : null,
      key.daily_tokens_per_caller ? `${key.daily_tokens_per_caller} tokens / caller / day` : null,
      key.daily_tokens_total ? `${key.daily_tokens_total} tokens / day` : null,
      key.request_schema ? 'request rules' : null,
    ].filter(Boolean).join(', ') || 'none';
    tr.append(
      cell(key.service, 'mono'),
      cell(key.name, 'mono strong'),
      cell(key.locked ? 'Locked' : 'Open', key.locked ? 'pill locked' : 'pill'),
      cell(key.hint ? `••••${key.hint}` : '••••', 'mono'),
      key.destinations === 'any'
        ? cell('⚠ any destination', 'mono wrap warning')
        : cell(key.destinations.length ? key.destinations.join('\n') : 'none: every request refused', 'mono wrap'),
      cell(key.positions.length ? key.positions.join(', ') : 'anywhere'),
      cell(limits),
      cell(usageText(used), 'usage'),
      cell(todayText(key, used), 'today'),
    );
    for (const [i, label] of ['Service', 'Name', 'Locked', 'Value', 'Destinations', 'Placeholder in', 'Limits', 'Last hour', 'Today'].entries()) {
      tr.children[i].dataset.label = label;
    }
    const actions = document.createElement('td');
    const buttons = document.createElement('div');
    buttons.className = 'row-actions';
    actions.append(buttons);
    const edit = document.createElement('button');
    edit.type = 'button';
    edit.className = 'secondary';
    edit.textContent = 'Edit';
    edit.setAttribute('aria-label', `Edit ${key.service}/${key.name}`);
    edit.addEventListener('click', () => openEditor(key));
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'danger';
    remove.textContent = 'Delete';
    remove.setAttribute('aria-label', `Delete ${key.service}/${key.name}`);
    remove.addEventListener('click', () => confirmDelete(key));
    buttons.append(edit, remove);
    tr.append(actions);
    body.append(tr);
  }
  $('#empty').hidden = keys.length > 0;
}

async function refresh() {
  try {
    const [keys, usage] = await Promise.all([admin('GET', '/keys'), admin('GET', '/usage')]);
    render(keys, usage);
    $('#keys-section').hidden = false;
    $('#services-section').hidden = false;
    $('#status').textContent = 'Connected.';
    showError('#error', null);
  } catch (e) {
    $('#keys-section').hidden = true;
    $('#services-section').hidden = true;
    $('#status').textContent = e.status === 401 ? 'The admin token is wrong.' : 'Could not load the keys.';
    showError('#error', e);
  }
}

function openEditor(key) {
  editing = key;
  const form = $('#key-form');
  form.reset();
  showError('#form-error', null);
  $('#editor-title').textContent = key ? `Edit ${key.service}/${key.name}` : 'Add key';
  form.service.value = key?.service || form.service.value;
  form.name.value = key?.name || '';
  form.service.readOnly = form.name.readOnly = Boolean(key);
  form.secret.required = !key;
  form.secret.placeholder = key ? `Leave empty to keep ••••${key.hint || ''}` : '';
  form.locked.checked = Boolean(key?.locked);
  const anywhere = key?.destinations === 'any';
  form.any_destination.checked = anywhere;
  form.destinations.value = anywhere ? '' : (key?.destinations || []).join('\n');
  for (const box of form.querySelectorAll('[name=positions]')) box.checked = Boolean(key?.positions.includes(box.value));
  form.rate_per_caller.value = key?.rate_per_caller ?? '';
  form.rate_total.value = key?.rate_total ?? '';
  form.daily_per_caller.value = key?.daily_per_caller ?? '';
  form.daily_total.value = key?.daily_total ?? '';
  form.daily_tokens_per_caller.value = key?.daily_tokens_per_caller ?? '';
  form.daily_tokens_total.value = key?.daily_tokens_total ?? '';
  form.request_schema.value = key?.request_schema ? JSON.stringify(key.request_schema, null, 2) : '';
  $('#editor').showModal();
  (key ? form.secret : form.service).focus();
}

/** The rules as JSON, or null when the box is empty; text that is not JSON is refused here. */
function schema(textarea) {
  if (!textarea.value.trim()) return null;
  try {
    return JSON.parse(textarea.value);
  } catch (e) {
    throw new AdminError(`The request rules are not JSON: ${e.message}`, 'INVALID_PARAMETER');
  }
}

function limit(input) {
  if (input.value === '') return null;
  const n = Number(input.value);
  if (!Number.isInteger(n) || n < 1) throw new AdminError(`"${input.labels[0].textContent.trim()}" must be a whole number of 1 or more.`, 'INVALID_PARAMETER');
  return n;
}

async function save(event) {
  event.preventDefault();
  const form = $('#key-form');
  try {
    if (!editing && (!form.service.value.trim() || !form.name.value.trim() || !form.secret.value)) {
      throw new AdminError('Service, name and the client secret key are required.', 'INVALID_PARAMETER');
    }
    if (!form.any_destination.checked && !form.destinations.value.trim()) {
      throw new AdminError('Give at least one destination, or choose "Any destination".', 'INVALID_PARAMETER');
    }
    const fields = {
      locked: form.locked.checked,
      destinations: form.any_destination.checked ? 'any' : form.destinations.value.split('\n').map((l) => l.trim()).filter(Boolean),
      positions: [...form.querySelectorAll('[name=positions]:checked')].map((b) => b.value),
      rate_per_caller: limit(form.rate_per_caller),
      rate_total: limit(form.rate_total),
      daily_per_caller: limit(form.daily_per_caller),
      daily_total: limit(form.daily_total),
      daily_tokens_per_caller: limit(form.daily_tokens_per_caller),
      daily_tokens_total: limit(form.daily_tokens_total),
      request_schema: schema(form.request_schema),
    };
    if (editing) {
      if (form.secret.value) fields.secret = form.secret.value;
      await admin('PATCH', `/keys/${encodeURIComponent(editing.service)}/${encodeURIComponent(editing.name)}`, fields);
    } else {
      await admin('POST', '/keys', { service: form.service.value.trim(), name: form.name.value.trim(), secret: form.secret.value, ...fields });
    }
    form.secret.value = '';
    $('#editor').close();
    $('#status').textContent = `Saved ${editing ? `${editing.service}/${editing.name}` : `${form.service.value}/${form.name.value}`}.`;
    await refresh();
  } catch (e) {
    showError('#form-error', e);
  }
}

function confirmDelete(key) {
  const dialog = $('#confirm');
  $('#confirm-text').textContent = `Delete the key "${key.name}" of service "${key.service}"? Pages using it will get NOT_EXISTS.`;
  dialog.returnValue = '';
  dialog.showModal();
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'delete') return;
    try {
      await admin('DELETE', `/keys/${encodeURIComponent(key.service)}/${encodeURIComponent(key.name)}`);
      $('#status').textContent = `Deleted ${key.service}/${key.name}.`;
      await refresh();
    } catch (e) {
      showError('#error', e);
    }
  }, { once: true });
}

/** A textarea's lines, or null when it holds none (the rule removed). */
function lines(textarea) {
  const list = textarea.value.split('\n').map((l) => l.trim()).filter(Boolean);
  return list.length ? list : null;
}

function showRules(rules) {
  const form = $('#service-form');
  form.cors_origins.value = (rules.cors_origins || []).join('\n');
  form.forward_destinations.value = (rules.forward_destinations || []).join('\n');
}

function serviceName() {
  const service = $('#service-form').service.value.trim();
  if (!service) throw new AdminError('Name the service first.', 'INVALID_PARAMETER');
  return service;
}

async function loadService() {
  try {
    const service = serviceName();
    showRules(await admin('GET', `/services/${encodeURIComponent(service)}`));
    showError('#service-error', null);
    $('#status').textContent = `Loaded the rules of ${service}.`;
  } catch (e) {
    showError('#service-error', e);
  }
}

async function saveService(event) {
  event.preventDefault();
  const form = $('#service-form');
  try {
    const service = serviceName();
    const rules = await admin('PUT', `/services/${encodeURIComponent(service)}`, {
      cors_origins: lines(form.cors_origins),
      forward_destinations: lines(form.forward_destinations),
    });
    showRules(rules);
    showError('#service-error', null);
    const forwards = rules.forward_destinations ? rules.forward_destinations.join(', ') : 'nowhere';
    $('#status').textContent = `Saved the rules of ${service}: requests without a secret go ${rules.forward_destinations ? `to ${forwards}` : forwards}.`;
  } catch (e) {
    showError('#service-error', e);
  }
}

$('#connect').addEventListener('submit', async (event) => {
  event.preventDefault();
  token = $('#token').value.trim();
  sessionStorage.setItem(tokenKey, token);
  await refresh();
});
$('#add').addEventListener('click', () => openEditor(null));
$('#key-form').addEventListener('submit', save);
$('#load-service').addEventListener('click', loadService);
$('#service-form').addEventListener('submit', saveService);
for (const button of document.querySelectorAll('[data-close]')) {
  button.addEventListener('click', () => button.closest('dialog').close());
}
if (token) {
  $('#token').value = token;
  refresh();
}
