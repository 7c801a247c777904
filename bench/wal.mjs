// Started by bench/wal.sh: 32 clients post N queued `csr`s to one url whose first request the
// stand-in holds (`?stamps=1&gap=120000`: one event, then two minutes), so the whole queue
// waits; meanwhile the WAL file's size is sampled every 50 ms.
import fs from 'node:fs';

const [endpoint, standin, dataDir, n] = process.argv.slice(2);
const meta = JSON.stringify({ public_identifier: 'wal-bench', service: 'walbench', owner: 'o' });
const url = `${standin}/v1/chat/completions?stamps=1&gap=120000`;
const walFile = `${dataDir}/skapi.sqlite3-wal`;
const wal = () => (fs.existsSync(walFile) ? fs.statSync(walFile).size : 0);
let largest = 0;
const sampler = setInterval(() => { largest = Math.max(largest, wal()); }, 50);

let sent = 0;
const started = performance.now();
async function client() {
  while (sent < Number(n)) {
    sent++;
    const r = await fetch(`${endpoint}/csr`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-meta': meta },
      body: JSON.stringify({ service: 'walbench', owner: 'o', clientSecretName: 'openai', url, method: 'post', queue: 'one',
        headers: { Authorization: 'Bearer $CLIENT_SECRET' }, data: { x: 'y'.repeat(200) } }),
    });
    if (r.status !== 200) throw new Error(`csr answered ${r.status}: ${await r.text()}`);
    await r.arrayBuffer();
  }
}
await Promise.all(Array.from({ length: 32 }, client));
const seconds = (performance.now() - started) / 1000;
await new Promise((r) => setTimeout(r, 3000));
largest = Math.max(largest, wal());
clearInterval(sampler);
const mb = (b) => (b / 1048576).toFixed(1);
console.log(`${n} queued in ${seconds.toFixed(1)} s; WAL at most ${mb(largest)} MB, ${mb(wal())} MB 3 s after the burst`);
