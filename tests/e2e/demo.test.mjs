// What a newcomer does: run the README's first command (scripts/run.sh), open the URL it
// prints, generate the seed's image, reload, find it in the history; then the GET-style demo
// and the queued pair; a streamed chat answer, reloaded mid-answer; a recording uploaded from a
// file input. Screenshots go to
// tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../support/browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const artifacts = path.join(root, 'tests/artifacts');
const data = fs.mkdtempSync(path.join(os.tmpdir(), 'skapi-demo-'));
let server, url, browser, page;
const consoleErrors = [];

before(async () => {
  fs.mkdirSync(artifacts, { recursive: true });
  server = spawn(path.join(root, 'scripts/run.sh'), [], {
    env: { ...process.env, SKAPI_LISTEN: '127.0.0.1:0', SKAPI_DATA_DIR: data },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const found = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (found) resolve(found[0]);
    });
    server.on('exit', (code) => reject(new Error(`scripts/run.sh exited with ${code}: ${out}`)));
  });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
});

after(async () => {
  await browser?.close();
  if (server?.pid) {
    try { process.kill(-server.pid, 'SIGTERM'); } catch { /* already gone */ }
  }
  fs.rmSync(data, { recursive: true, force: true });
});

const shot = (name) => page.screenshot({ path: path.join(artifacts, `demo-${name}.png`), fullPage: true });

test('the seed form generates an image that survives a reload', async () => {
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'one URL printed');
  await page.goto(url);
  await shot('1-start');
  assert.equal(await page.inputValue('textarea[name="data[prompt]"]'), 'A cute baby sea otter');
  const secretFile = fs.readFileSync(path.join(data, 'skapi.sqlite3'));
  assert.ok(secretFile.length > 0);

  await page.click('#seed-form input[type=submit]');
  await page.waitForFunction(() => /Waiting|Generating|Queued/.test(document.querySelector('#status').textContent));
  await shot('2-pending');
  await page.waitForSelector('#result img', { timeout: 20000 });
  assert.match(await page.textContent('#status'), /Done/);
  const src = await page.getAttribute('#result img', 'src');
  assert.match(src, /^data:image\/png;base64,iVBOR/);
  const size = await page.evaluate(() => { const i = document.querySelector('#result img'); return [i.naturalWidth, i.naturalHeight]; });
  assert.deepEqual(size, [256, 256], 'a real picture decoded');
  await shot('3-image');

  // A different prompt draws a different picture.
  await page.fill('textarea[name="data[prompt]"]', 'A grumpy old walrus');
  await page.click('#seed-form input[type=submit]');
  await page.waitForFunction((first) => document.querySelector('#result img')?.src !== first && /Done/.test(document.querySelector('#status').textContent), src, { timeout: 20000 });
  assert.notEqual(await page.getAttribute('#result img', 'src'), src);

  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll('#history li').length >= 2);
  const history = await page.$$eval('#history li', (items) => items.map((li) => ({ text: li.textContent, thumb: !!li.querySelector('img') })));
  assert.ok(history.some((h) => h.text.includes('A cute baby sea otter') && h.text.includes('Done') && h.thumb), JSON.stringify(history));
  assert.ok(history.some((h) => h.text.includes('A grumpy old walrus')));
  await shot('4-history-after-reload');
  const html = await page.content();
  const secrets = fs.readFileSync(path.join(data, 'master.key')); // the key file exists; secrets are sealed
  assert.equal(secrets.length, 32);
  assert.ok(!html.includes('$CLIENT_SECRET"') || html.includes('Bearer $CLIENT_SECRET'), 'only the placeholder is in the page');
});

test('a reload while a request runs resumes polling it', async () => {
  await page.fill('textarea[name="data[prompt]"]', 'A lighthouse at dusk');
  await page.click('#seed-form input[type=submit]');
  await page.waitForFunction(() => /Waiting|Generating|Queued/.test(document.querySelector('#status').textContent));
  await page.reload();
  await page.waitForFunction(() => [...document.querySelectorAll('#history li')].some((li) => li.textContent.includes('A lighthouse at dusk')));
  await page.waitForFunction(() => [...document.querySelectorAll('#history li')].some((li) => li.textContent.includes('A lighthouse at dusk') && li.textContent.includes('Done') && li.querySelector('img')), null, { timeout: 20000 });
});

test('a GET-style API with the key in the query, and a queued pair', async () => {
  await page.fill('#place', 'Busan');
  await page.click('#geo-form button');
  await page.waitForFunction(() => document.querySelector('#geo-result').textContent.includes('"query": "Busan"'));
  const geo = JSON.parse(await page.textContent('#geo-result'));
  assert.equal(typeof geo.lat, 'number');

  await page.click('#pair');
  await page.waitForFunction(() => ['A', 'B'].every((r) => document.querySelector(`[data-row=${r}]`).dataset.finished), null, { timeout: 20000 });
  const rows = await page.$$eval('#pair-rows tr', (trs) => trs.map((tr) => ({ ...tr.dataset })));
  const [a, b] = rows;
  assert.ok(Number(b.started) >= Number(a.finished), `B started after A finished: ${JSON.stringify(rows)}`);
  await shot('5-get-and-queue');
});

test('a chat answer arrives word by word and resumes after a reload', async () => {
  await page.goto(url);
  await page.fill('#chat-prompt', 'Tell me about sea otters');
  await page.click('#chat-form button');
  // Words appear while the answer is still being written.
  await page.waitForFunction(() => Number(document.querySelector('#chat-answer').dataset.seq || 0) >= 4);
  assert.match(await page.textContent('#chat-status'), /Writing… \(\d+ pieces, pushed\)/);
  const early = await page.textContent('#chat-answer');
  assert.match(early, /^This is the/);
  assert.doesNotMatch(early, /reached this page\.$/, 'not the whole answer yet');
  await shot('7-chat-streaming');

  // A reload mid-answer: the page finds the running stream in the history and reads it again.
  await page.reload();
  await page.waitForFunction(() => /Resuming|Writing|Done/.test(document.querySelector('#chat-status').textContent));
  await page.waitForFunction(() => /Done/.test(document.querySelector('#chat-status').textContent), null, { timeout: 20000 });
  const answer = await page.textContent('#chat-answer');
  assert.match(answer, /^This is the offline stand-in answering "Tell me about sea otters": .* reached this page\.$/);
  assert.equal(await page.inputValue('#chat-prompt'), 'Tell me about sea otters');
  await shot('8-chat-resumed');
});

test('a recording chosen in a file input is uploaded through the form', async () => {
  await page.goto(url);
  const recording = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
  await page.setInputFiles('#recording', { name: 'hello.wav', mimeType: 'audio/wav', buffer: recording });
  await page.click('#upload-form button');
  await page.waitForFunction(() => /Done|Failed/.test(document.querySelector('#upload-status').textContent), null, { timeout: 20000 });
  assert.match(await page.textContent('#upload-status'), /^Done/);
  // The stand-in names what it received: the file's name, its size and type, and whisper-1.
  assert.match(await page.textContent('#transcript'), /^The stand-in received hello\.wav \(4096 bytes of audio\/wav, fingerprint [0-9a-f]{16}\) for whisper-1\./);
  await shot('9-upload');
});

test("Skapi's current door: forwardRequest(event, {…}) on a form", async () => {
  await page.goto(url);
  await page.fill('#forward-prompt', 'A fox in the snow');
  await page.click('#forward-form button');
  await page.waitForFunction(() => /Done|Failed/.test(document.querySelector('#forward-status').textContent), null, { timeout: 20000 });
  assert.match(await page.textContent('#forward-status'), /^Done — sent with forwardRequest/);
  assert.equal(await page.getAttribute('#forward-result img', 'alt'), 'A fox in the snow');
  // The form was the body: the prompt went as data.prompt beside the options' data.
  await page.waitForFunction(() => [...document.querySelectorAll('#history li')].some((li) => li.textContent.includes('A fox in the snow')));
  await shot('10-forward-request');

  // The demo key's rules allow one image a request: two are refused, naming the rule.
  await page.click('#forward-two');
  await page.waitForFunction(() => /Failed/.test(document.querySelector('#forward-status').textContent), null, { timeout: 20000 });
  assert.match(await page.textContent('#forward-status'), /INVALID_REQUEST: \/data\/n: 2 is greater than the maximum of 1/);
  consoleErrors.length = 0; // the refused csr's 400 is expected
  await shot('11-refused-by-the-rules');
});

test('readable at 375 px and no console errors', async () => {
  await page.setViewportSize({ width: 375, height: 800 });
  await page.goto(url);
  await page.waitForFunction(() => document.querySelectorAll('#history li').length >= 1);
  const width = await page.evaluate(() => document.scrollingElement.scrollWidth);
  assert.ok(width <= 375, `the page is ${width}px wide at 375px`);
  await shot('6-phone');
  await page.goto(`${url}dashboard.html`);
  const dashWidth = await page.evaluate(() => document.scrollingElement.scrollWidth);
  assert.ok(dashWidth <= 375, `the dashboard is ${dashWidth}px wide at 375px`);
  assert.deepEqual(consoleErrors, []);
});
