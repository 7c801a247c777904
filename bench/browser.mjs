// Boot and form timings in headless Chromium, the wasm SDK beside skapi-js@1.5.8 in the same
// run (started by bench/browser.sh, which provides the servers). Prints a table. With
// BENCH_OTHER_DIST (another build's dist/), that build is measured in the same run too, its
// pages loaded and its forms sent in turn with this one's: a before/after pair.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../tests/support/browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { SKAPI_TEST_ENDPOINT: endpoint, SKAPI_TEST_STANDIN: standIn, SKAPI_TEST_CDN_PORT: cdnPort } = process.env;
const LOADS = Number(process.env.BENCH_LOADS || 20);
const FORM_RUNS = Number(process.env.BENCH_FORM_RUNS || 50);
const OTHER = process.env.BENCH_OTHER_DIST;
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

const pages = { '/boot-wasm.html': bootPage('wasm'), '/boot-js.html': bootPage('js'), '/form-wasm.html': formPage('wasm'), '/form-js.html': formPage('js') };
if (OTHER) {
  pages['/other/boot-wasm.html'] = pages['/boot-wasm.html'].replace('"/skapi.js"', '"/other/skapi.js"');
  pages['/other/form-wasm.html'] = pages['/form-wasm.html'].replace('"/skapi.js"', '"/other/skapi.js"');
}
const files = {
  '/skapi.js': path.join(root, 'dist/skapi.js'),
  '/skapi_wasm_bg.wasm': path.join(root, 'dist/skapi_wasm_bg.wasm'),
  ...(OTHER && { '/other/skapi.js': path.join(OTHER, 'skapi.js'), '/other/skapi_wasm_bg.wasm': path.join(OTHER, 'skapi_wasm_bg.wasm') }),
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

async function boot(page) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const tab = await context.newPage();
  await tab.goto(`${base}${page}`);
  await tab.waitForFunction(() => window.done === true, null, { timeout: 20000 });
  const ms = await tab.evaluate(() => window.t1 - window.t0);
  await context.close();
  return ms;
}

async function formTab(page) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const tab = await context.newPage();
  await tab.goto(`${base}${page}`);
  for (let i = 0; i < 10; i++) await tab.evaluate(() => window.encodeOnce()); // warm: loaded, compiled
  return tab;
}

// Page loads and form calls in turn, so that a drift of the machine's speed falls on all alike.
const kinds = [['wasm', '/boot-wasm.html', '/form-wasm.html'], ['js', '/boot-js.html', '/form-js.html']];
if (OTHER) kinds.push(['other', '/other/boot-wasm.html', '/other/form-wasm.html']);
const boots = Object.fromEntries(kinds.map(([k]) => [k, []]));
const forms = Object.fromEntries(kinds.map(([k]) => [k, []]));
for (let i = 0; i < LOADS; i++) for (const [k, page] of kinds) boots[k].push(await boot(page));
const tabs = await Promise.all(kinds.map(([, , page]) => formTab(page)));
const BLOCK = 10;
for (let done = 0; done < FORM_RUNS; done += BLOCK) {
  for (const [n, [k]] of kinds.entries()) for (let i = 0; i < BLOCK; i++) forms[k].push(await tabs[n].evaluate(() => window.encodeOnce()));
}
await browser.close();
site.close();

const row = (name, ms) => console.log(`${name.padEnd(66)} ${ms.toFixed(2).padStart(10)} ms`);
// The clock is coarse (0.1 ms in the page): a form's figure is a mean, a boot's a median.
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`${'measure'.padEnd(66)} ${'time'.padStart(13)}`);
row(`boot → first csr sent, wasm SDK (endpoint), median of ${LOADS} loads`, median(boots.wasm));
if (OTHER) row(`boot → first csr sent, other build, median of ${LOADS} loads`, median(boots.other));
row(`boot → first csr sent, skapi-js@1.5.8 (CDN JSON local), median of ${LOADS}`, median(boots.js));
row(`200-field form → csr body, wasm SDK, mean of ${forms.wasm.length} runs`, mean(forms.wasm));
if (OTHER) row(`200-field form → csr body, other build, mean of ${forms.other.length}`, mean(forms.other));
row(`200-field form → csr body, skapi-js@1.5.8, mean of ${forms.js.length} runs`, mean(forms.js));
const ratios = (k) => `boot ${(median(boots[k]) / median(boots.js)).toFixed(2)}, forms ${(mean(forms[k]) / mean(forms.js)).toFixed(2)}`;
console.log(`ratio to skapi-js — this build: ${ratios('wasm')}${OTHER ? `; other build: ${ratios('other')}` : ''}`);
