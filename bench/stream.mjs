// Streamed answers in headless Chromium (started by bench/stream.sh, which provides the
// servers): the stand-in writes 50 events 20 ms apart, each carrying the time it was written;
// the page's onStream notes when it holds each one. Both clocks are this machine's
// (`performance.timeOrigin + performance.now()` in Node and in the page). Prints a table.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../tests/support/browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { SKAPI_TEST_ENDPOINT: endpoint, SKAPI_TEST_STANDIN: standIn } = process.env;
const RUNS = Number(process.env.BENCH_RUNS || 5);
const EVENTS = 50;
const GAP_MS = 20;
const POLL_MS = Number(process.env.BENCH_POLL_MS || 100);
const chatUrl = `${standIn}/v1/chat/completions?stamps=${EVENTS}&gap=${GAP_MS}`;

const page = `<!doctype html><meta charset="utf-8"><script src="/skapi.js"></script>
<script>
  const now = () => performance.timeOrigin + performance.now();
  const stamps = (text) => [...text.matchAll(/"content":"([0-9.]+)"/g)].map((m) => Number(m[1]));
  // Through skapi-server: each chunk's events, received when onStream holds them.
  window.viaSdk = async (endpoint, poll) => {
    const skapi = new Skapi('streambench', 'bench-owner', { endpoint });
    const delays = [];
    const start = now();
    let first = null;
    const result = await skapi.clientSecretRequest({
      clientSecretName: 'openai', url: ${JSON.stringify(chatUrl)}, method: 'POST',
      headers: { Authorization: 'Bearer $CLIENT_SECRET' }, data: { stream: true }, stream: true, poll,
      onStream: (chunk) => {
        const at = now();
        first ??= at - start;
        for (const t of stamps(chunk)) delays.push(at - t);
      },
    });
    return { delays, first, status: result.status };
  };
  // The same stand-in called directly (with its key): time to the first event.
  window.direct = async () => {
    const start = now();
    const response = await fetch(${JSON.stringify(chatUrl)}, { method: 'POST', headers: { Authorization: 'Bearer sk-bench' } });
    const reader = response.body.getReader();
    await reader.read();
    const first = now() - start;
    while (!(await reader.read()).done);
    return first;
  };
</script>`;

const site = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://bench').pathname;
  if (url === '/') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end(page);
  }
  const file = { '/skapi.js': 'dist/skapi.js', '/skapi_wasm_bg.wasm': 'dist/skapi_wasm_bg.wasm' }[url];
  if (file) {
    res.writeHead(200, { 'content-type': url.endsWith('.wasm') ? 'application/wasm' : 'text/javascript' });
    return res.end(fs.readFileSync(path.join(root, file)));
  }
  res.writeHead(404);
  res.end();
});
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const browser = await launchChromium();
const tab = await browser.newPage();
await tab.goto(`http://127.0.0.1:${site.address().port}/`);

async function runs(fn, arg) {
  const all = { delays: [], first: [] };
  await tab.evaluate(fn, arg); // warm-up: module compiled, connections open
  for (let i = 0; i < RUNS; i++) {
    const r = await tab.evaluate(fn, arg);
    if (typeof r === 'number') all.first.push(r);
    else {
      if (r.status !== 'resolved' || r.delays.length !== EVENTS) throw new Error(`a run ended ${r.status} with ${r.delays.length} events`);
      all.delays.push(...r.delays);
      all.first.push(r.first);
    }
  }
  return all;
}

const push = await runs(([e]) => window.viaSdk(e, 0), [endpoint]);
const poll = await runs(([e, p]) => window.viaSdk(e, p), [`${standIn}/nopush`, POLL_MS]);
const direct = await runs(() => window.direct());
await browser.close();
site.close();

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const row = (name, xs) => console.log(`${name.padEnd(58)} ${pct(xs, 50).toFixed(2).padStart(9)} ${pct(xs, 99).toFixed(2).padStart(9)} ${String(xs.length).padStart(6)}`);
console.log(`${'measure (ms)'.padEnd(58)} ${'p50'.padStart(9)} ${'p99'.padStart(9)} ${'n'.padStart(6)}`);
row(`event written → onStream holds it, push (${RUNS}×${EVENTS} events, ${GAP_MS} ms apart)`, push.delays);
row(`event written → onStream holds it, polling every ${POLL_MS} ms`, poll.delays);
row('call → first chunk, through skapi-server (push)', push.first);
row('call → first chunk, through skapi-server (polling)', poll.first);
row('call → first event, the stand-in called directly', direct.first);
