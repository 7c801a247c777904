// A stand-in third-party API for browser tests: answers like the real APIs do, but only when
// it receives the real secret (given in STANDIN_SECRET), so a passing test proves the server
// filled the placeholder in. Prints `listening on http://127.0.0.1:PORT` once ready.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const secret = process.env.STANDIN_SECRET;
if (!secret) {
  console.error('STANDIN_SECRET is required');
  process.exit(2);
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

// A skapi-server look-alike that rate-limits: `/ratelimited/csr` answers 429 (Retry-After: 1)
// every other time, `/always429/csr` always.
let rateLimitedCalls = 0;
function rateLimiting(req, res, url) {
  const m = url.pathname.match(/^\/(ratelimited|always429)\/(service|csr)$/);
  if (!m) return false;
  res.setHeader('access-control-allow-origin', '*');
  res.setHeader('access-control-allow-headers', req.headers['access-control-request-headers'] || '*');
  res.setHeader('access-control-expose-headers', 'retry-after');
  if (req.method === 'OPTIONS') {
    res.writeHead(204);
    res.end();
  } else if (m[2] === 'service') {
    json(res, 200, { service: 'ok' });
  } else if (m[1] === 'always429' || rateLimitedCalls++ % 2 === 0) {
    res.setHeader('retry-after', '1');
    json(res, 429, { code: 'RATE_LIMITED', message: 'Too many requests.' });
  } else {
    json(res, 200, { done: true });
  }
  return true;
}

// OpenAI's streamed chat completions (`stream: true`): one SSE event per word of
// `?text=` (default "Hello from the stand-in"), `?gap=` ms apart, then `data: [DONE]`.
// `?die=N` breaks the connection after N events; `?split=1` writes the secret itself split
// across two writes (a server that redacts must still hide it); `?emoji=1` ends with an event
// whose sea otter emoji is split between two writes inside its UTF-8 bytes; `?stamps=N` writes N events
// whose content is the time of writing (ms since the epoch, as `performance` reads it), for
// latency benchmarks. Open to any origin, so a page may also call it directly.
async function chat(req, res, url) {
  res.setHeader('access-control-allow-origin', '*');
  if (req.headers.authorization !== `Bearer ${secret}`) {
    return json(res, 401, { error: { message: 'Incorrect API key provided' } });
  }
  const stamps = Number(url.searchParams.get('stamps') || 0);
  const words = stamps ? Array.from({ length: stamps }, () => null) : (url.searchParams.get('text') || 'Hello from the stand-in').split(' ');
  const gap = Number(url.searchParams.get('gap') || 20);
  const die = Number(url.searchParams.get('die') || 0);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const wait = () => new Promise((r) => setTimeout(r, gap));
  const event = (content) => `data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`;
  for (let i = 0; i < words.length; i++) {
    if (die && i === die) return res.destroy();
    res.write(event(stamps ? String(performance.timeOrigin + performance.now()) : (i ? ' ' : '') + words[i]));
    await wait();
  }
  if (url.searchParams.get('emoji')) {
    const bytes = Buffer.from(event(' 🦦 é'));
    const at = bytes.indexOf(Buffer.from('🦦')) + 2;
    res.write(bytes.subarray(0, at));
    await wait();
    res.write(bytes.subarray(at));
    await wait();
  }
  if (url.searchParams.get('split')) {
    const half = Math.floor(secret.length / 2);
    res.write(`data: {"key": "${secret.slice(0, half)}`);
    await wait();
    res.write(`${secret.slice(half)}"}\n\n`);
    await wait();
  }
  res.end('data: [DONE]\n\n');
}

// skapi-server behind a proxy (the server whose URL is in GATEWAY_FILE): `/nopush/…` answers
// `csr-stream` with 404, as a backend without push would; `/droppush/…` cuts each `csr-stream`
// connection after its second event.
function proxy(req, res, url) {
  const m = url.pathname.match(/^\/(nopush|droppush)(\/.*)$/);
  if (!m) return false;
  const target = new URL(m[2] + url.search, fs.readFileSync(process.env.GATEWAY_FILE, 'utf8').trim());
  if (m[1] === 'nopush' && m[2] === '/csr-stream' && req.method === 'POST') {
    res.writeHead(404, { 'access-control-allow-origin': req.headers.origin || '*', 'content-type': 'application/json' });
    res.end('{"message": "no push here"}');
    return true;
  }
  const headers = { ...req.headers, host: target.host };
  const upstream = http.request(target, { method: req.method, headers }, (answer) => {
    res.writeHead(answer.statusCode, answer.headers);
    if (m[1] === 'droppush' && m[2] === '/csr-stream' && answer.statusCode === 200) {
      let events = 0;
      answer.on('data', (chunk) => {
        if (events >= 2) return;
        events += (chunk.toString().match(/\n\n/g) || []).length;
        // Cut once what was written has left: the reader holds those events, then loses the connection.
        res.write(chunk, () => {
          if (events < 2) return;
          answer.destroy();
          res.destroy();
        });
      });
      answer.on('end', () => res.end());
    } else {
      answer.pipe(res);
    }
  });
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
  return true;
}

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

function handle(req, res) {
  const url = new URL(req.url, 'http://stand-in');
  if (rateLimiting(req, res, url)) return;
  if (proxy(req, res, url)) return;
  // What arrived, as a hash of its exact bytes: {sha256, size, contentType} (with the key only);
  // a multipart body also as its parts, in order: {name, value} or {name, filename, type, size, sha256}.
  if (url.pathname === '/v1/hash') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      if (req.headers.authorization !== `Bearer ${secret}`) return json(res, 401, { error: 'bad key' });
      const bytes = Buffer.concat(chunks);
      const contentType = req.headers['content-type'] || null;
      const answer = { sha256: sha256(bytes), size: bytes.length, contentType };
      if (/^multipart\/form-data/i.test(contentType || '')) {
        try {
          const form = await new Response(bytes, { headers: { 'content-type': contentType } }).formData();
          answer.parts = [];
          for (const [name, value] of form) {
            if (typeof value === 'string') answer.parts.push({ name, value });
            else answer.parts.push({ name, filename: value.name, type: value.type, size: value.size, sha256: sha256(Buffer.from(await value.arrayBuffer())) });
          }
        } catch (e) {
          // A body that is not the multipart it says it is: said, not a crash of the stand-in.
          answer.parts = null;
          answer.malformed = String(e);
          answer.head = bytes.subarray(0, 200).toString('latin1');
        }
      }
      json(res, 200, answer);
    });
    return;
  }
  if (url.pathname === '/v1/chat/completions' && req.method === 'OPTIONS') {
    res.writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*', 'access-control-allow-methods': 'POST' });
    return res.end();
  }
  if (url.pathname === '/v1/chat/completions' && req.method === 'POST') {
    req.resume();
    req.on('end', () => chat(req, res, url));
    return;
  }
  let raw = '';
  req.on('data', (chunk) => { raw += chunk; });
  req.on('end', async () => {
    if (url.pathname === '/v1/images/generations' && req.method === 'POST') {
      if (req.headers.authorization !== `Bearer ${secret}`) {
        return json(res, 401, { error: { message: 'Incorrect API key provided' } });
      }
      const body = JSON.parse(raw || '{}');
      const delay = Number(url.searchParams.get('delay') || 0);
      if (delay) await new Promise((r) => setTimeout(r, delay));
      return json(res, 200, { created: 1, data: [{ b64_json: `image of ${body.prompt}` }], n: body.n });
    }
    // Writes back what it received: the method, the body as text and the query; and what the
    // server told it of the caller (`skapiHeaders`), when it told anything.
    if (url.pathname === '/v1/echo') {
      const [user, service] = [req.headers['x-skapi-user'] || null, req.headers['x-skapi-service'] || null];
      const told = user || service ? { told: { user, service } } : {};
      return json(res, 200, { method: req.method, raw, search: url.search, contentType: req.headers['content-type'] || null, ...told });
    }
    // Speech-like bytes: every byte value, `?n=` times, as audio/mpeg (with the key only).
    if (url.pathname === '/v1/audio/speech') {
      if (req.headers.authorization !== `Bearer ${secret}`) return json(res, 401, { error: { message: 'Incorrect API key provided' } });
      const n = Number(url.searchParams.get('n') || 1);
      res.writeHead(200, { 'content-type': 'audio/mpeg' });
      return res.end(Buffer.from(Array.from({ length: 256 * n }, (_, i) => i % 256)));
    }
    if (url.pathname === '/maps' && req.method === 'GET') {
      if (url.searchParams.get('key') !== secret) return json(res, 403, { error: 'bad key' });
      return json(res, 200, { place: url.searchParams.get('q') });
    }
    // Skapi's CDN: gateway JSON pointing every gateway at the skapi-server whose URL the test
    // script wrote to GATEWAY_FILE.
    const cdn = url.pathname.match(/^(?:\/cdn)?\/([^/]{1,4})\/(admin|record)-v[12]\.json$/);
    if (cdn) {
      res.setHeader('access-control-allow-origin', '*');
      if (cdn[1] === 'none') return json(res, 404, { error: 'no such service' });
      const base = fs.readFileSync(process.env.GATEWAY_FILE, 'utf8').trim().replace(/\/?$/, '/');
      if (cdn[2] === 'record') {
        return json(res, 200, { record_public: base, record_private: base, get_public: base, get_private: base, post_public: base, post_private: base, del_private: base });
      }
      return json(res, 200, {
        admin_public: base, admin_public_2: base, admin_private: base, admin_private_2: base,
        extra_public: base, extra_public_2: base, extra_private: base, extra_private_2: base,
        service_public: base, get_users_private: base, userpool_id: 'us-east-1_skapiTest', userpool_client: 'skapitestclient',
      });
    }
    const status = url.pathname.match(/^\/status\/(\d{3})$/);
    if (status) return json(res, Number(status[1]), { status: Number(status[1]) });
    json(res, 404, { error: 'no such path' });
  });
}

const server = http.createServer(handle);
server.listen(Number(process.env.STANDIN_PORT || 0), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

// The same answers over TLS, for a browser that is told Skapi's CDN lives here.
if (process.env.STANDIN_TLS_CERT) {
  const tls = https.createServer({
    cert: fs.readFileSync(process.env.STANDIN_TLS_CERT),
    key: fs.readFileSync(process.env.STANDIN_TLS_KEY),
  }, handle);
  tls.listen(0, '127.0.0.1', () => {
    console.log(`tls port ${tls.address().port}`);
  });
}
