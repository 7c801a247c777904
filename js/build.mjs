// Builds the npm package into dist/ from wasm-pack's output (see scripts/build-package.sh):
// the ES module for bundlers (wasm inlined, gzipped), the classic script and its .wasm, the types.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const [pkgDir, distDir] = process.argv.slice(2);
const glue = path.join(pkgDir, 'skapi_wasm.js');

// The glue's fallback (fetch the .wasm next to the module) is never taken — the entries always
// hand over the wasm — and its `new URL(…, import.meta.url)` would make bundlers look for a file.
const source = fs.readFileSync(glue, 'utf8');
const fallback = "new URL('skapi_wasm_bg.wasm', import.meta.url)";
if (!source.includes(fallback)) throw new Error(`the wasm-bindgen glue changed: ${fallback} not found`);
// Every Rust module importing from src/browser.js gets its own entry in the imports object, all
// under the same key (the same module): one is enough, and bundlers warn about the others.
const seen = new Set();
const deduped = source.split('\n').filter((line) => {
  const key = line.match(/^\s+("\.\/snippets\/[^"]+"): import\d+,$/)?.[1];
  if (!key) return true;
  if (seen.has(key)) return false;
  seen.add(key);
  return true;
}).join('\n');
fs.writeFileSync(glue, deduped.replace(fallback, "(() => { throw new Error('skapi-wasm: load the module through its entry point'); })()"));

const snippet = fs.readdirSync(path.join(pkgDir, 'snippets'), { recursive: true })
  .map((f) => path.join(pkgDir, 'snippets', f))
  .find((f) => f.endsWith('.js') && fs.readFileSync(f, 'utf8').includes('class SkapiError'));
if (!snippet) throw new Error('SkapiError not found in the snippets');
const wasm = path.join(pkgDir, 'skapi_wasm_bg.wasm');
// Inline as base64 of its gzip (the page inflates it with DecompressionStream): base64 of the
// raw wasm would weigh a third more than the wasm itself, even gzipped again by the server.
const packed = zlib.gzipSync(fs.readFileSync(wasm), { level: 9 }).toString('base64');
fs.writeFileSync(path.join(pkgDir, 'skapi_wasm_inline.mjs'), `export default ${JSON.stringify(packed)};\n`);

fs.mkdirSync(distDir, { recursive: true });
const alias = {
  'skapi-wasm-glue': path.resolve(glue),
  'skapi-wasm-inline': path.resolve(pkgDir, 'skapi_wasm_inline.mjs'),
  'skapi-wasm-error': path.resolve(snippet),
};
const common = { bundle: true, minify: true, alias, target: 'es2020', legalComments: 'none', logLevel: 'warning' };
await build({ ...common, entryPoints: ['js/esm-entry.mjs'], format: 'esm', outfile: path.join(distDir, 'skapi.mjs') });
await build({ ...common, entryPoints: ['js/global-entry.mjs'], format: 'iife', outfile: path.join(distDir, 'skapi.js') });
fs.copyFileSync(wasm, path.join(distDir, 'skapi_wasm_bg.wasm'));
fs.copyFileSync('js/skapi.d.ts', path.join(distDir, 'skapi.d.ts'));
