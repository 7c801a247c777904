// The dashboard driven as an operator would, in headless Chromium: connect, add a key, lock it,
// edit it, delete it. Screenshots of each state go to tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../support/browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const artifacts = path.join(root, 'tests/artifacts');
const { SKAPI_TEST_ENDPOINT: endpoint, SKAPI_TEST_ADMIN_TOKEN: adminToken } = process.env;
const SECRET = 'sk-dashboard-secret-value-1234';
let browser, page;
const consoleErrors = [];

before(async () => {
  assert.ok(endpoint && adminToken, 'run through scripts/test-browser.sh');
  fs.mkdirSync(artifacts, { recursive: true });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
});

after(async () => browser?.close());

const shot = (name) => page.screenshot({ path: path.join(artifacts, `dashboard-${name}.png`), fullPage: true });
const editorClosed = () => page.waitForFunction(() => !document.querySelector('#editor').open);
const row = (name) => page.locator('#keys tbody tr', { has: page.locator('td', { hasText: new RegExp(`^${name}$`) }) });

test('an operator manages a key from the dashboard', async () => {
  await page.goto(`${endpoint}/dashboard.html`);
  await shot('1-start');

  await page.fill('#token', 'wrong-token');
  await page.click('#connect button');
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error'), /UNAUTHORIZED/);
  consoleErrors.length = 0; // the 401 of the wrong token is expected

  // One request through the `maps` key first, so that its row has figures to show.
  const { SKAPI_TEST_STANDIN: standIn } = process.env;
  const sent = await fetch(`${endpoint}/csr`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-meta': JSON.stringify({ public_identifier: 'dashboard-test', service: 'svc-browser', owner: 'o' }) },
    body: JSON.stringify({ service: 'svc-browser', owner: 'o', clientSecretName: 'maps', url: `${standIn}/maps`, method: 'get', params: { key: '$CLIENT_SECRET', q: 'x' } }),
  });
  assert.equal(sent.status, 200, await sent.text());
  for (let i = 0; i < 100; i++) {
    const usage = await (await fetch(`${endpoint}/admin/usage?service=svc-browser`, { headers: { authorization: `Bearer ${adminToken}` } })).json();
    if (usage.some((u) => u.name === 'maps' && u.last_hour.resolved)) break;
    await new Promise((r) => setTimeout(r, 50));
  }

  await page.fill('#token', adminToken);
  await page.click('#connect button');
  await page.waitForSelector('#keys-section:not([hidden])');
  assert.ok(await row('openai').count() >= 1, 'the keys registered by the CLI are listed');
  // (Earlier tests of the run used the key too: at least this one request.)
  assert.match(await row('maps').first().locator('td.usage').textContent(), /[1-9]\d* resolved · last used just now/, 'the key\'s last hour');

  // Add, from the keyboard.
  await page.focus('#add');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#editor[open]');
  await page.fill('#key-form [name=service]', 'dash-svc');
  await page.fill('#key-form [name=name]', 'dash-key');
  await page.fill('#key-form [name=secret]', SECRET);
  await page.fill('#key-form [name=destinations]', 'https://api.example.com/v1');
  await shot('2-adding');
  await page.focus('#key-form [name=secret]');
  await page.keyboard.press('Enter'); // submits the form
  await editorClosed();
  await row('dash-key').waitFor();
  assert.match(await row('dash-key').textContent(), /••••1234/);
  assert.match(await row('dash-key').textContent(), /https:\/\/api\.example\.com\/v1/);
  assert.ok(!(await page.content()).includes(SECRET), 'the value is never shown again');
  await shot('3-added');

  // Lock it.
  await row('dash-key').getByRole('button', { name: 'Edit dash-svc/dash-key' }).click();
  await page.check('#key-form [name=locked]');
  await page.click('#key-form button[value=save]');
  await editorClosed();
  await page.waitForFunction(() => [...document.querySelectorAll('#keys tbody tr')].some((r) => r.textContent.includes('dash-key') && r.textContent.includes('Locked')));
  await shot('4-locked');

  // Edit destinations, positions and a limit; a bad limit is refused with a clear error first.
  await row('dash-key').getByRole('button', { name: 'Edit dash-svc/dash-key' }).click();
  await page.fill('#key-form [name=rate_total]', '-3');
  await page.click('#key-form button[value=save]');
  await page.waitForSelector('#form-error:not([hidden])');
  assert.match(await page.textContent('#form-error'), /whole number/);
  await page.fill('#key-form [name=rate_total]', '30');
  await page.fill('#key-form [name=daily_per_caller]', '20');
  await page.fill('#key-form [name=daily_tokens_total]', '50000');
  await page.fill('#key-form [name=destinations]', 'https://api.example.com/v2\nhttps://backup.example.com/');
  await page.check('#key-form [value=headers]');
  await page.click('#key-form button[value=save]');
  await editorClosed();
  await page.waitForFunction(() => [...document.querySelectorAll('#keys tbody tr')].some((r) => r.textContent.includes('30 total')));
  const edited = await row('dash-key').textContent();
  assert.match(edited, /api\.example\.com\/v2/);
  assert.match(edited, /headers/);
  assert.match(edited, /20 \/ caller \/ day/, 'the daily quota');
  assert.match(edited, /50000 tokens \/ day/, 'the token budget');
  assert.equal(await row('dash-key').locator('td.today').textContent(), '0 requests · 0 / 50000 tokens', 'today against the budget');
  assert.equal(await row('maps').first().locator('td.today').textContent(), 'no daily limit');
  assert.match(edited, /••••1234/, 'an edit without a new value keeps the value');
  await shot('5-edited');

  // Request rules: text that is not JSON, and JSON that is not JSON Schema, are refused with
  // their reason; a schema is saved and shown.
  await row('dash-key').getByRole('button', { name: 'Edit dash-svc/dash-key' }).click();
  await page.fill('#key-form [name=request_schema]', '{"properties": ');
  await page.click('#key-form button[value=save]');
  await page.waitForSelector('#form-error:not([hidden])');
  assert.match(await page.textContent('#form-error'), /not JSON/);
  await page.fill('#key-form [name=request_schema]', '{"type": "no-such-type"}');
  await page.click('#key-form button[value=save]');
  await page.waitForFunction(() => /not valid JSON Schema/.test(document.querySelector('#form-error').textContent));
  consoleErrors.length = 0; // the refused PATCH's 400 is expected
  await page.fill('#key-form [name=request_schema]', '{"properties": {"data": {"properties": {"n": {"maximum": 1}}}}}');
  await page.click('#key-form button[value=save]');
  await editorClosed();
  await page.waitForFunction(() => [...document.querySelectorAll('#keys tbody tr')].some((r) => r.textContent.includes('dash-key') && r.textContent.includes('request rules')));
  const listed = await (await fetch(`${endpoint}/admin/keys?service=dash-svc`, { headers: { authorization: `Bearer ${adminToken}` } })).json();
  assert.deepEqual(listed[0].request_schema, { properties: { data: { properties: { n: { maximum: 1 } } } } });

  // No destination at all is refused; "any destination" must be chosen, and shows as a warning.
  await row('dash-key').getByRole('button', { name: 'Edit dash-svc/dash-key' }).click();
  await page.fill('#key-form [name=destinations]', '');
  await page.click('#key-form button[value=save]');
  await page.waitForSelector('#form-error:not([hidden])');
  assert.match(await page.textContent('#form-error'), /at least one destination/);
  await page.check('#key-form [name=any_destination]');
  await page.click('#key-form button[value=save]');
  await editorClosed();
  await page.waitForFunction(() => [...document.querySelectorAll('#keys tbody tr')].some((r) => r.textContent.includes('dash-key') && r.textContent.includes('any destination')));
  assert.equal(await row('dash-key').locator('.warning').count(), 1, 'any destination is shown as a warning');
  await shot('5b-any-destination');

  // Phone width: readable, nothing wider than the screen.
  await page.setViewportSize({ width: 375, height: 800 });
  const overflow = await page.evaluate(() => document.scrollingElement.scrollWidth);
  assert.ok(overflow <= 375, `the page is ${overflow}px wide at 375px`);
  await shot('6-phone');
  await page.setViewportSize({ width: 1100, height: 800 });

  // Delete, with confirmation; Cancel first keeps it.
  await row('dash-key').getByRole('button', { name: 'Delete dash-svc/dash-key' }).click();
  await page.waitForSelector('#confirm[open]');
  await shot('7-confirm');
  await page.click('#confirm button[value=cancel]');
  assert.equal(await row('dash-key').count(), 1);
  await row('dash-key').getByRole('button', { name: 'Delete dash-svc/dash-key' }).click();
  await page.click('#confirm button[value=delete]');
  await page.waitForFunction(() => ![...document.querySelectorAll('#keys tbody tr')].some((r) => r.textContent.includes('dash-key')));
  await shot('8-deleted');

  assert.deepEqual(consoleErrors, []);
});

test('an operator lets a service forward requests without a secret, and takes it back', async () => {
  const { SKAPI_TEST_STANDIN: standIn } = process.env;
  const service = 'dash-forward';
  // A request naming no secret, as forwardRequest(null, {url, data}) sends it.
  const keyless = async () => (await fetch(`${endpoint}/csr`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-meta': JSON.stringify({ public_identifier: 'dashboard-test', service, owner: 'o' }) },
    body: JSON.stringify({ service, owner: 'o', url: `${standIn}/echo`, method: 'post', data: { from: 'dashboard' } }),
  })).status;
  assert.equal(await keyless(), 400, 'nowhere by default');

  await page.goto(`${endpoint}/dashboard.html`); // still connected: the token is in this tab's storage
  await page.waitForSelector('#services-section:not([hidden])');
  await page.fill('#service-form [name=service]', service);
  await page.click('#load-service');
  // Loaded before anything is typed: a late answer would overwrite what the test types.
  await page.waitForFunction((s) => document.querySelector('#status').textContent === `Loaded the rules of ${s}.`, service);
  assert.equal(await page.inputValue('#service-form [name=forward_destinations]'), '');

  await page.fill('#service-form [name=forward_destinations]', 'ftp://files.example.com');
  await page.click('#service-form button[type=submit]');
  await page.waitForSelector('#service-error:not([hidden])');
  assert.match(await page.textContent('#service-error'), /INVALID_PARAMETER: .*http\(s\) URL/);
  consoleErrors.length = 0; // the refused PUT's 400 is expected
  assert.equal(await keyless(), 400, 'a refused change changes nothing');

  await page.fill('#service-form [name=forward_destinations]', `${standIn}/echo`);
  await page.click('#service-form button[type=submit]');
  await page.waitForFunction((s) => document.querySelector('#status').textContent.includes(`Saved the rules of ${s}: requests without a secret go to`), service);
  await shot('9-forwarding');
  assert.equal(await keyless(), 200, 'a running server sees it at once');

  await page.fill('#service-form [name=forward_destinations]', '');
  await page.click('#service-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('go nowhere'));
  assert.equal(await keyless(), 400, 'and its removal');
  assert.deepEqual(consoleErrors, []);
});
