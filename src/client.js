// The transport's one browser call (src/client.rs): fetch, then the answer's status, text and
// Retry-After. In JavaScript because fetch, Headers and Response through web-sys cost the wasm
// an import shim each.

/** GET `url` (no `body`) or POST `body` with `headers`; resolves [status, text, retryAfter]. */
export function call(url, headers, body) {
  const init = { method: body === undefined ? 'GET' : 'POST', mode: 'cors', headers, body };
  return fetch(url, init).then((r) => r.text().then((text) => [r.status, text, r.headers.get('retry-after')]));
}
