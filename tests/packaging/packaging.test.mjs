// The packed npm tarball used the ways pages use it: installed into a Vite app, a webpack 5 app
// and an esbuild bundle (each built, then run in headless Chromium against skapi-server); the
// classic script with the seed's form, submitted by a real click (also before the wasm has
// loaded, with every kind of control the user may have set); and `tsc --strict` over a usage
// file against the declarations.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../support/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { SKAPI_TEST_ENDPOINT: endpoint, SKAPI_TEST_STANDIN: standIn, SKAPI_TEST_TARBALL: tarball } = process.env;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'skapi-packaging-'));
const servers = [];
let browser;

const image = { created: 1, data: [{ b64_json: 'image of A cute baby sea otter' }], n: 1 };

/** A fresh app directory with the tarball installed. */
function app(name, files) {
  const dir = path.join(work, name);
  fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text);
  fs.copyFileSync(path.join(here, 'app.js'), path.join(dir, 'src/index.js'));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', tarball], { cwd: dir, stdio: 'inherit' });
  return dir;
}

/** Serves `dir`; `slow` delays the named files. Returns the base URL. */
async function serve(dir, slow = {}) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://app');
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    }
    const file = path.join(dir, path.normalize(url.pathname === '/' ? '/index.html' : url.pathname).replace(/^(\.\.[/\\])+/, ''));
    if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      return res.end();
    }
    const delay = slow[path.basename(file)];
    if (delay) await new Promise((r) => setTimeout(r, delay));
    // Any origin may load the files (a sandboxed frame's is opaque).
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream', 'access-control-allow-origin': '*' });
    res.end(fs.readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return `http://127.0.0.1:${server.address().port}`;
}

async function open(url) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(url);
  return { page, errors };
}

async function resultOf(base) {
  const { page, errors } = await open(`${base}/?endpoint=${encodeURIComponent(endpoint)}&api=${encodeURIComponent(standIn)}`);
  await page.waitForFunction(() => document.body?.dataset.result, null, { timeout: 20000 });
  const result = JSON.parse(await page.evaluate(() => document.body.dataset.result));
  await page.close();
  return { result, errors };
}

before(async () => {
  assert.ok(endpoint && standIn && tarball, 'run through scripts/test-browser.sh');
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  for (const s of servers) s.close();
  fs.rmSync(work, { recursive: true, force: true });
});

test('a Vite app', async () => {
  const dir = app('vite-app', { 'index.html': '<!doctype html><meta charset="utf-8"><body><script type="module" src="/src/index.js"></script></body>' });
  const { build } = await import('vite');
  await build({ root: dir, logLevel: 'warn', configFile: false, build: { outDir: path.join(dir, 'dist') } });
  const { result, errors } = await resultOf(await serve(path.join(dir, 'dist')));
  assert.deepEqual(result, image);
  assert.deepEqual(errors, []);
});

test('a webpack 5 app', async () => {
  const dir = app('webpack-app', {});
  fs.mkdirSync(path.join(dir, 'dist'));
  fs.writeFileSync(path.join(dir, 'dist/index.html'), '<!doctype html><meta charset="utf-8"><body><script src="main.js"></script></body>');
  const { default: webpack } = await import('webpack');
  const stats = await new Promise((resolve, reject) => webpack({
    mode: 'production', context: dir, entry: './src/index.js',
    output: { path: path.join(dir, 'dist'), filename: 'main.js' },
    performance: { hints: false },
  }, (e, s) => (e ? reject(e) : resolve(s))));
  assert.ok(!stats.hasErrors(), stats.toString('errors-only'));
  const { result, errors } = await resultOf(await serve(path.join(dir, 'dist')));
  assert.deepEqual(result, image);
  assert.deepEqual(errors, []);
});

test('an esbuild bundle', async () => {
  const dir = app('esbuild-app', {});
  const esbuild = await import('esbuild');
  await esbuild.build({ absWorkingDir: dir, entryPoints: ['src/index.js'], bundle: true, format: 'esm', outfile: 'dist/app.js', logLevel: 'warning' });
  fs.writeFileSync(path.join(dir, 'dist/index.html'), '<!doctype html><meta charset="utf-8"><body><script type="module" src="app.js"></script></body>');
  const { result, errors } = await resultOf(await serve(path.join(dir, 'dist')));
  assert.deepEqual(result, image);
  assert.deepEqual(errors, []);
});

/** The seed's form page with the classic script, as a newcomer copies it. */
function seedFormSite(name) {
  const dir = app(name, {});
  const site = path.join(dir, 'site');
  fs.mkdirSync(site);
  for (const f of ['skapi.js', 'skapi_wasm_bg.wasm']) fs.copyFileSync(path.join(dir, 'node_modules/skapi-wasm/dist', f), path.join(site, f));
  fs.copyFileSync(path.join(here, 'seed-form.html'), path.join(site, 'index.html'));
  for (const f of ['action-form.html', 'done.html']) fs.copyFileSync(path.join(here, f), path.join(site, f));
  return site;
}

async function submitSeedForm(base, { beforeLoad }) {
  const { page, errors } = await open(`${base}/?endpoint=${encodeURIComponent(endpoint)}`);
  const logged = new Promise((resolve) => page.on('console', (m) => { if (m.type() === 'log') resolve(m.args()[0].jsonValue()); }));
  const url = page.url();
  if (!beforeLoad) await page.waitForLoadState('networkidle');
  await page.click('input[type=submit]');
  if (beforeLoad) {
    // The module is still loading: values changed after the click must not count.
    await page.fill('textarea', 'changed after submit');
  }
  const result = await logged;
  assert.equal(result.status, 'pending');
  assert.match(result.id, /^\d+:\w+$/);
  assert.equal(page.url(), url, 'the page did not navigate');
  const history = await page.evaluate(() => skapi.clientSecretRequestHistory({ url: 'https://api.openai.com/v1/images/generations', method: 'POST' }));
  const item = history.list.find((i) => i.id === result.id);
  assert.deepEqual(item.request_body, { model: 'gpt-image-1.5', n: 1, size: '1024x1024', prompt: 'A cute baby sea otter' });
  // Skapi's newest names: forwardRequest with `secretName`, its history and its cancel.
  const renamed = await page.evaluate(async () => {
    const url = 'https://api.openai.com/v1/chat/completions';
    const sent = await skapi.forwardRequest(null, { secretName: 'openai', url, headers: { Authorization: 'Bearer $CLIENT_SECRET' }, data: { n: 1 } });
    const listed = await skapi.forwardRequestHistory({ url, method: 'POST' });
    const cancelled = await skapi.cancelForwardRequest({ url, method: 'POST', id: sent.id });
    return { sent, listed: listed.list.some((i) => i.id === sent.id), cancelled };
  });
  assert.match(renamed.sent.id, /^\d+:\w+$/, JSON.stringify(renamed));
  assert.equal(renamed.listed, true);
  assert.equal(typeof renamed.cancelled.removed, 'boolean');
  assert.deepEqual(errors, []);
  await page.close();
}

test('the seed form with the script tag, submitted by a click', async () => {
  await submitSeedForm(await serve(seedFormSite('script-tag')), { beforeLoad: false });
});

test('the seed form submitted before the wasm has loaded', async () => {
  await submitSeedForm(await serve(seedFormSite('script-tag-slow'), { 'skapi_wasm_bg.wasm': 1500 }), { beforeLoad: true });
});

test('a form submitted while the wasm loads keeps what the user chose', async () => {
  const site = seedFormSite('script-tag-choices');
  fs.copyFileSync(path.join(here, 'loading-form.html'), path.join(site, 'loading-form.html'));
  const base = await serve(site, { 'skapi_wasm_bg.wasm': 4000 });
  const { page, errors } = await open(`${base}/loading-form.html?endpoint=${encodeURIComponent(endpoint)}`);
  const logged = new Promise((resolve) => page.on('console', (m) => { if (m.type() === 'log') resolve(m.args()[0].jsonValue()); }));
  const image = { name: 'otter.png', mimeType: 'image/png', buffer: Buffer.from('png bytes') };
  await page.fill('input[name="data[prompt]"]', 'an otter');
  await page.selectOption('select[name="data[size]"]', '512x512');
  await page.selectOption('select[name="data[tags]"]', ['a', 'c']);
  await page.check('input[name="data[hd]"]');
  await page.check('input[name="data[style]"][value="natural"]');
  await page.fill('input[name="data[n]"]', '2');
  await page.setInputFiles('input[name="data[image]"]', image);
  await page.fill('input[name="data[user]"]', 'ann');
  const wasmLoaded = () => page.evaluate(() => performance.getEntriesByType('resource').some((e) => e.name.endsWith('.wasm')));
  assert.equal(await wasmLoaded(), false, 'the wasm loaded before the form was submitted: the test proves nothing');
  await page.click('button[name="data[via]"]');
  // Changed while the wasm still loads: none of it may count.
  await page.fill('input[name="data[prompt]"]', 'changed after submit');
  await page.selectOption('select[name="data[size]"]', '256x256');
  await page.selectOption('select[name="data[tags]"]', ['b']);
  await page.uncheck('input[name="data[hd]"]');
  await page.check('input[name="data[style]"][value="vivid"]');
  await page.check('input[name="data[extra]"]');
  await page.fill('input[name="data[user]"]', 'bob');
  await page.setInputFiles('input[name="data[image]"]', []);
  assert.equal(await wasmLoaded(), false, 'the wasm loaded before the values were changed');
  const result = await logged;
  assert.equal(result.status, 'pending', JSON.stringify(result));
  const history = await page.evaluate(() => skapi.clientSecretRequestHistory({ url: 'https://api.openai.com/v1/images/edits', method: 'POST' }));
  const item = history.list.find((i) => i.id === result.id);
  assert.deepEqual(item.request_body, {
    prompt: 'an otter',
    size: '512x512',
    tags: ['a', 'c'],
    hd: true,
    style: 'natural',
    n: 2,
    image: { filename: 'otter.png', content_type: 'image/png', size: image.buffer.length },
    via: 'button',
    user: 'ann',
  });
  assert.deepEqual(errors, []);
  await page.close();
});

test("Skapi's current door: a project ID, and forwardRequest on a form submitted before the wasm has loaded", async () => {
  const { encodeProjectId } = await import('../../js/project-id.mjs');
  const site = seedFormSite('script-tag-forward');
  fs.copyFileSync(path.join(here, 'forward-form.html'), path.join(site, 'forward-form.html'));
  const base = await serve(site, { 'skapi_wasm_bg.wasm': 1500 });
  // The browser tests' server holds an `openai` key for service ap22compat.
  const project = encodeProjectId('ap22compat', '00000000-0000-4000-8000-000000000001');
  const { page, errors } = await open(`${base}/forward-form.html?endpoint=${encodeURIComponent(endpoint)}&api=${encodeURIComponent(standIn)}&project=${project}`);
  const logged = new Promise((resolve) => page.on('console', (m) => { if (m.type() === 'log') resolve(m.args()[0].jsonValue()); }));
  const url = page.url();
  await page.click('input[type=submit]');
  await page.fill('textarea', 'changed after submit');
  assert.deepEqual(await logged, image, 'the form as it was, merged under the options');
  assert.equal(page.url(), url, 'the page did not navigate');
  const facts = await page.evaluate(() => {
    const refusal = (...args) => { try { new Skapi(...args); return null; } catch (e) { return [e instanceof SkapiError, e.code, e.message]; } };
    const names = ['forwardRequestStream', 'forwardRequestFinalize', 'forwardRequestHistory', 'cancelForwardRequest', 'stopForwardRequestPolling', 'forwardRequestQueueCount'];
    return {
      decoded: [skapi.service, skapi.owner, skapi.project_id],
      tutorial: new Skapi('5fRHl9Cw2Qq3eFEc0w-7Zd6TgdLUaFxseKMT1qveY', {}).service,
      pair: new Skapi('ap220wfRHl9Cw2QqeFEc', 'f8e16604-69e4-451c-9d90-4410f801c006').project_id,
      unnamed: new Skapi('svc', 'owner').project_id,
      invalid: refusal('not-a-project-id'),
      missing: refusal(),
      aliases: names.filter((n) => typeof skapi[n] !== 'function'),
      stopped: skapi.stopForwardRequestPolling(),
    };
  });
  assert.deepEqual(facts, {
    decoded: ['ap22compat', '00000000-0000-4000-8000-000000000001', project],
    tutorial: 'ap220wfRHl9Cw2QqeFEc',
    pair: '5fRHl9Cw2Qq3eFEc0w-7Zd6TgdLUaFxseKMT1qveY',
    unnamed: null,
    invalid: [true, 'INVALID_PARAMETER', 'Service ID is invalid.'],
    missing: [true, 'INVALID_PARAMETER', 'Project ID is required.'],
    aliases: [],
    stopped: 0,
  });
  assert.deepEqual(errors, []);
  await page.close();
});

test("the docs' placeholder asks for the project ID once, keeps it for the tab, and holds calls until then", async () => {
  const { encodeProjectId } = await import('../../js/project-id.mjs');
  const project = encodeProjectId('ap22compat', '00000000-0000-4000-8000-000000000001');
  const site = seedFormSite('script-tag-placeholder');
  fs.writeFileSync(path.join(site, 'placeholder.html'), `<!doctype html><meta charset="utf-8"><script src="skapi.js"></script><script>
  const options = { endpoint: new URLSearchParams(location.search).get('endpoint') };
  const made = [new Skapi('<Project ID>', options), new Skapi('project_id', options)];
  // Made at once, before anyone has answered: it waits for the ID.
  window.listed = made[0].clientSecretRequestHistory({ url: 'https://api.openai.com/v1/models', method: 'GET' })
    .then((page) => ({ listed: Array.isArray(page.list) }), (e) => ({ error: e.code + ': ' + e.message }));
  window.before = made.map((s) => s.service === undefined);
</script>`);
  const base = await serve(site);
  const { page, errors } = await open(`${base}/placeholder.html?endpoint=${encodeURIComponent(endpoint)}`);
  // Questions asked before this handler (the page's first load) were dismissed: asked afresh.
  const asked = [];
  const answers = ['  not-an-id ', ` ${project} `, null];
  page.on('dialog', (dialog) => {
    const answer = answers[asked.push(dialog.message()) - 1];
    return answer === null ? dialog.dismiss() : dialog.accept(answer);
  });
  await page.reload();
  const answered = await page.evaluate(async () => ({ history: await window.listed, before: window.before }));
  assert.deepEqual(answered, { history: { listed: true }, before: [true, true] }, 'the call went out once the ID was given');
  assert.equal(asked.length, 2, 'asked again after an answer that is no project ID, and once for both instances');
  assert.match(asked[0], /instead of a project ID/);
  assert.match(asked[1], /^"not-an-id" is not a project ID\./);
  const later = await page.evaluate(() => {
    const again = new Skapi('<Project ID>', options);
    return { id: again.project_id, service: again.service, saved: sessionStorage.getItem('skapi:project_id') };
  });
  assert.deepEqual(later, { id: project, service: 'ap22compat', saved: project }, 'the tab keeps the answer: no question the second time');
  assert.equal(asked.length, 2);

  // Cancelled: the calls reject with Skapi's error. Nobody to ask: the constructor throws it.
  const refusals = await page.evaluate(async () => {
    sessionStorage.clear();
    const cancelled = await new Skapi('<Project ID>').clientSecretRequestQueueCount({ queue: 'q' }).then(() => null, (e) => [e.code, e.message]);
    window.prompt = undefined;
    let thrown = null;
    try { new Skapi('<Project ID>'); } catch (e) { thrown = [e instanceof SkapiError, e.code, e.message]; }
    return { cancelled, thrown };
  });
  assert.deepEqual(refusals, {
    cancelled: ['INVALID_PARAMETER', 'Project ID is required.'],
    thrown: [true, 'INVALID_PARAMETER', 'Project ID is required.'],
  });
  assert.equal(asked.length, 3, 'the cancelled question was asked');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a page whose storage throws (a sandboxed frame) still sends its requests', async () => {
  const site = seedFormSite('script-tag-sandboxed');
  fs.writeFileSync(path.join(site, 'sandboxed.html'), `<!doctype html><meta charset="utf-8"><body>
<script>addEventListener('message', (e) => { document.body.dataset.result = JSON.stringify(e.data); });</script>
<iframe sandbox="allow-scripts" src="frame.html${'?endpoint=' + encodeURIComponent(endpoint)}"></iframe>`);
  fs.writeFileSync(path.join(site, 'frame.html'), `<!doctype html><meta charset="utf-8"><script src="skapi.js"></script><script>
  let storage = 'reachable';
  try { localStorage.length; } catch (e) { storage = e.name; }
  const skapi = new Skapi('seed-form', 'owner-browser', { endpoint: new URLSearchParams(location.search).get('endpoint') });
  const request = { clientSecretName: 'openai', url: 'https://api.openai.com/v1/models', method: 'GET', headers: { Authorization: 'Bearer $CLIENT_SECRET' } };
  Promise.all([skapi.clientSecretRequest(request), skapi.getFormResponse()]).then(
    ([sent, form]) => parent.postMessage({ storage, status: sent.status, form }, '*'),
    (e) => parent.postMessage({ storage, error: e.code + ': ' + e.message }, '*'),
  );
</script>`);
  const { page, errors } = await open(`${await serve(site)}/sandboxed.html`);
  await page.waitForFunction(() => document.body?.dataset.result, null, { timeout: 20000 });
  const result = JSON.parse(await page.evaluate(() => document.body.dataset.result));
  assert.equal(result.storage, 'SecurityError', 'the frame could reach its storage: the test proves nothing');
  assert.deepEqual(result, { storage: 'SecurityError', status: 'pending', form: null });
  assert.deepEqual(errors.filter((e) => !e.includes('localStorage')), []);
  await page.close();
});

test('a form with an action leaves the response for the action page', async () => {
  const base = await serve(seedFormSite('script-tag-action'));
  const { page, errors } = await open(`${base}/action-form.html?endpoint=${encodeURIComponent(endpoint)}`);
  await page.waitForLoadState('networkidle');
  await Promise.all([page.waitForURL(/done\.html\?from=form$/), page.click('input[type=submit]')]);
  await page.waitForFunction(() => document.body?.dataset.response !== undefined);
  const response = JSON.parse(await page.evaluate(() => document.body.dataset.response));
  assert.equal(response.status, 'pending');
  assert.match(response.id, /^\d+:\w+$/);
  await page.reload();
  await page.waitForFunction(() => document.body?.dataset.response !== undefined);
  assert.equal(await page.evaluate(() => document.body.dataset.response), 'null', 'a response is given once');
  assert.deepEqual(errors, []);
  await page.close();
});

test('tsc --strict compiles a usage file against the declarations', () => {
  const dir = app('typescript', {});
  fs.copyFileSync(path.join(here, 'usage.ts'), path.join(dir, 'usage.ts'));
  execFileSync(path.join(root, 'node_modules/.bin/tsc'), ['--strict', '--noEmit', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--lib', 'es2022,dom', 'usage.ts'], { cwd: dir, stdio: 'inherit' });
});
