// The official skapi-js@1.5.8 from npm, in headless Chromium, against skapi-server: its gateway
// JSON comes from "Skapi's CDN", which the browser is told lives on the stand-in's TLS port.
// Each scenario runs with skapi-js and with the wasm SDK on the same page; results must agree.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../support/browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { SKAPI_TEST_ENDPOINT: endpoint, SKAPI_TEST_STANDIN: standIn, SKAPI_TEST_CDN_PORT: cdnPort, SKAPI_TEST_PKG: pkgDir } = process.env;
const SERVICE = 'ap22compat';
const OWNER = 'c0ffee00-1234-4abc-9def-0123456789ab';
const CDN_HOST = 'd3e9syvbtso631.cloudfront.net';

const PAGE = `<!doctype html><meta charset="utf-8"><title>compat</title>
<script src="/skapi.js"></script>
<script type="module">
  import { Skapi as WasmSkapi } from '/pkg/skapi.mjs';
  window.sdks = {
    js: new __SKAPI_BUNDLE__.Skapi(${JSON.stringify(SERVICE)}, ${JSON.stringify(OWNER)}),
    wasm: new WasmSkapi(${JSON.stringify(SERVICE)}, ${JSON.stringify(OWNER)}, { endpoint: ${JSON.stringify(endpoint)} }),
  };
  window.ready = true;
</script>`;

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
let site, browser, page;

before(async () => {
  assert.ok(endpoint && standIn && cdnPort && pkgDir, 'run through scripts/test-browser.sh');
  site = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://page');
    let file = null;
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(PAGE);
    }
    if (url.pathname === '/skapi.js') file = path.join(root, 'node_modules/skapi-js/dist/skapi.js');
    if (url.pathname.startsWith('/pkg/')) file = path.join(pkgDir, path.normalize(url.pathname.slice(5)).replace(/^(\.\.[/\\])+/, ''));
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  browser = await launchChromium([`--host-resolver-rules=MAP ${CDN_HOST} 127.0.0.1:${cdnPort}`, '--ignore-certificate-errors']);
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  await page.goto(`http://127.0.0.1:${site.address().port}/`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 20000 });
});

after(async () => {
  await browser?.close();
  site?.close();
});

/** Runs `scenario(sdk, args)` in the page with each SDK; returns {js, wasm}. */
async function both(scenario, args) {
  return page.evaluate(async ({ source, args }) => {
    const run = new Function('sdk', 'args', `return (${source})(sdk, args)`);
    const out = {};
    for (const name of ['js', 'wasm']) {
      try {
        out[name] = { ok: await run(window.sdks[name], args) };
      } catch (e) {
        out[name] = { error: { code: e.code, message: e.message } };
      }
    }
    return out;
  }, { source: scenario.toString(), args });
}

const seed = (url, extra = {}) => ({
  clientSecretName: 'openai', url, method: 'POST',
  headers: { 'Content-Type': 'application/json', Authorization: 'Bearer $CLIENT_SECRET' },
  data: { model: 'gpt-image-1.5', prompt: 'A cute baby sea otter', n: 1, size: '1024x1024' },
  ...extra,
});
const image = { created: 1, data: [{ b64_json: 'image of A cute baby sea otter' }], n: 1 };

test('a request without poll answers pending with an id', async () => {
  const r = await both(async (sdk, { params }) => {
    const res = await sdk.clientSecretRequest(params);
    return { status: res.status, hasId: typeof res.id === 'string' && /^\d+:\w+$/.test(res.id) };
  }, { params: seed(`${standIn}/v1/images/generations?case=nopoll`) });
  assert.deepEqual(r.js, { ok: { status: 'pending', hasId: true } });
  assert.deepEqual(r.wasm, r.js);
});

test('a request with poll resolves with the third-party answer', async () => {
  const r = await both((sdk, { params }) => sdk.clientSecretRequest(params),
    { params: seed(`${standIn}/v1/images/generations?case=poll`, { poll: 50 }) });
  assert.deepEqual(r.js, { ok: image });
  assert.deepEqual(r.wasm, r.js);
});

test('a queued request with poll resolves the same way', async () => {
  const r = await both((sdk, { params }) => sdk.clientSecretRequest(params),
    { params: seed(`${standIn}/v1/images/generations?case=queue`, { poll: 50, queue: 'compat-jobs' }) });
  assert.deepEqual(r.js, { ok: image });
  assert.deepEqual(r.wasm, r.js);
});

test('history lists the finished request with the same fields', async () => {
  const url = `${standIn}/v1/images/generations?case=history`;
  const r = await both(async (sdk, { params, url }) => {
    await sdk.clientSecretRequest(params);
    const page = await sdk.clientSecretRequestHistory({ url, method: 'POST' });
    const item = page.list[0];
    return {
      count: page.list.length,
      item: { status: item.status, status_code: item.status_code, response_body: item.response_body, request_body: item.request_body },
    };
  }, { params: seed(url, { poll: 50 }), url });
  assert.deepEqual(r.js, {
    ok: { count: 1, item: { status: 'resolved', status_code: 200, response_body: image, request_body: seed(url).data } },
  });
  assert.deepEqual(r.wasm, r.js);
});

test('history with poll settles every unfinished request', async () => {
  const url = `${standIn}/v1/images/generations?case=historypoll&delay=700`;
  const r = await both(async (sdk, { params, url }) => {
    await sdk.clientSecretRequest(params);
    const page = await sdk.clientSecretRequestHistory({ url, method: 'POST', poll: 50 });
    const settled = await Promise.all(page.pending);
    // skapi-js resolves with the answer itself; the wasm SDK with the final PollingResult.
    return settled.map((s) => (s && s.status === 'resolved' ? s.response_body : s));
  }, { params: seed(url), url });
  assert.deepEqual(r.js, { ok: [image] });
  assert.deepEqual(r.wasm, r.js);
});
