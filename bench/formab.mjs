// Boot and form timings in headless Chromium, the wasm SDK beside skapi-js@1.5.8 in the same
// run (started by bench/browser.sh, which provides the servers). Prints a table.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../tests/support/browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { SKAPI_TEST_ENDPOINT: endpoint, SKAPI_TEST_STANDIN: standIn, SKAPI_TEST_CDN_PORT: cdnPort } = process.env;
const LOADS = Number(process.env.BENCH_LOADS || 20);
const FORM_RUNS = Number(process.env.BENCH_FORM_RUNS || 50);
const SERVICE = 'ap22bench';
const OWNER = 'c0ffee00-1234-4abc-9def-0123456789ab';
const seed = {
  clientSecretName: 'openai', url: `${standIn}/v1/images/generations`, method: 'POST',
  headers: { 'Content-Type': 'application/json', Authorization: 'Bearer $CLIENT_SECRET' },
  data: { model: 'gpt-image-1.5', prompt: 'A cute baby sea otter', n: 1, size: '1024x1024' },
};

// Records when the first `csr` call leaves, whichever API the SDK uses.
const probe = `<script>
  window.t0 = performance.now();
  const mark = (url) => { if (String(url).endsWith('/csr') && !window.t1) window.t1 = performance.now(); };
  const realFetch = window.fetch;
  window.fetch = function (input, init) { mark(input && input.url ? input.url : input); return realFetch.apply(this, arguments); };
  const realOpen = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (method, url) { mark(url); return realOpen.apply(this, arguments); };
</script>`;
const construct = {
  wasm: `new Skapi(${JSON.stringify(SERVICE)}, ${JSON.stringify(OWNER)}, { endpoint: ${JSON.stringify(endpoint)} })`,
  js: `new __SKAPI_BUNDLE__.Skapi(${JSON.stringify(SERVICE)}, ${JSON.stringify(OWNER)})`,
};
const scripts = { wasm: '/skapi.js', js: '/skapi-js.js' };
const bootPage = (sdk) => `<!doctype html><meta charset="utf-8">${probe}
<script src="${scripts[sdk]}"></script>
<script>window.sdk = ${construct[sdk]}; sdk.clientSecretRequest(${JSON.stringify(seed)}).then(() => { window.done = true; });</script>`;

// A form of 200 data fields (plus the request's own), and a fetch that answers `csr` at once.
const fields = Array.from({ length: 200 }, (_, i) => `<input name="data[field${i}]" value="value ${i}">`).join('');
const formPage = (sdk) => `<!doctype html><meta charset="utf-8">
<script src="${scripts[sdk]}"></script>
<form id="f"><input name="clientSecretName" value="openai"><input name="url" value="${seed.url}"><input name="method" value="POST">
<input name="headers[Authorization]" value="Bearer $CLIENT_SECRET">${fields}</form>
<script>
  window.sdk = ${construct[sdk]};
  let sentAt = 0;
  const answer = () => new Response(JSON.stringify({ id: '1:a', status: 'pending' }), { headers: { 'content-type': 'application/json' } });
  const realFetch = window.fetch;
  window.fetch = function (input) {
    const url = String(input && input.url ? input.url : input);
    if (url.endsWith('/csr')) { sentAt = performance.now(); return Promise.resolve(answer()); }
    return realFetch.apply(this, arguments);
  };
  // skapi-js sends with XMLHttpRequest: note when its csr leaves (it goes to the real server).
  const realOpen = XMLHttpRequest.prototype.open;
  const realSend = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) { this.benchUrl = String(url); return realOpen.apply(this, arguments); };
  XMLHttpRequest.prototype.send = function () { if (this.benchUrl.endsWith('/csr')) sentAt = performance.now(); return realSend.apply(this, arguments); };
  window.encodeOnce = async () => {
    const start = performance.now();
    await sdk.clientSecretRequest(document.getElementById('f'));
    return sentAt - start;
  };
</script>`;

const pages = { '/a/form-wasm.html': formPage('wasm').replace('/skapi.js', '/a/skapi.js'), '/boot-wasm.html': bootPage('wasm'), '/boot-js.html': bootPage('js'), '/form-wasm.html': formPage('wasm'), '/form-js.html': formPage('js') };
const files = {
  '/skapi.js': path.join(root, 'dist/skapi.js'),
  '/skapi_wasm_bg.wasm': path.join(root, 'dist/skapi_wasm_bg.wasm'),
  '/a/skapi.js': path.join(process.env.DIST_A, 'skapi.js'),
  '/a/skapi_wasm_bg.wasm': path.join(process.env.DIST_A, 'skapi_wasm_bg.wasm'),
  '/skapi-js.js': path.join(root, 'node_modules/skapi-js/dist/skapi.js'),
};
const site = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://bench').pathname;
  if (pages[url]) {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end(pages[url]);
  }
  if (files[url]) {
    res.writeHead(200, { 'content-type': url.endsWith('.wasm') ? 'application/wasm' : 'text/javascript' });
    return res.end(fs.readFileSync(files[url]));
  }
  res.writeHead(url === '/favicon.ico' ? 204 : 404);
  res.end();
});
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${site.address().port}`;
const browser = await launchChromium([`--host-resolver-rules=MAP d3e9syvbtso631.cloudfront.net 127.0.0.1:${cdnPort}`, '--ignore-certificate-errors']);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function boot(sdk) {
  const times = [];
  for (let i = 0; i < LOADS; i++) {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${base}/boot-${sdk}.html`);
    await page.waitForFunction(() => window.done === true, null, { timeout: 20000 });
    times.push(await page.evaluate(() => window.t1 - window.t0));
    await context.close();
  }
  return times;
}

async function forms(sdk) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(`${base}/form-${sdk}.html`);
  await page.evaluate(() => window.encodeOnce()); // warm: the SDK loaded, code compiled
  const times = [];
  for (let i = 0; i < FORM_RUNS; i++) times.push(await page.evaluate(() => window.encodeOnce()));
  await context.close();
  return times;
}


async function open(url) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(url);
  for (let i = 0; i < 30; i++) await page.evaluate(() => window.encodeOnce());
  return page;
}
const pa = await open(`${base}/a/form-wasm.html`);
const pb = await open(`${base}/form-wasm.html`);
const pj = await open(`${base}/form-js.html`);
const A = [], B = [], J = [];
for (let round = 0; round < 12; round++) {
  for (const [p, out] of [[pa, A], [pb, B], [pj, J]]) for (let i = 0; i < 40; i++) out.push(await p.evaluate(() => window.encodeOnce()));
}
console.log(`form A (before) ${median(A).toFixed(2)} ms, B (after) ${median(B).toFixed(2)} ms, skapi-js ${median(J).toFixed(2)} ms; ratios ${(median(A)/median(J)).toFixed(2)} / ${(median(B)/median(J)).toFixed(2)}`);
await browser.close();
site.close();
