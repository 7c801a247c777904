// Builds the npm package into dist/ from wasm-pack's output (see scripts/build-package.sh):
// the ES module for bundlers (wasm inlined, gzipped), the classic script and its .wasm, the types.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import zopfli from '@gfx/zopfli';

const { gzipAsync } = zopfli;

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
fs.writeFileSync(glue, minifyNames(deduped).replace(fallback, "(() => { throw new Error('skapi-wasm: load it through its entry point'); })()"));

/**
 * The glue speaking the short import and export names wasm-opt gave the wasm
 * (`--minify-imports-and-exports-and-modules`, its renaming in `names.json`): wasm-bindgen's
 * names carry 16-hex-digit hashes that cost the wasm and the glue each over a kilobyte gzipped.
 * Without `names.json` (a `--dev` build) the glue is left as it is.
 */
function minifyNames(glue) {
  const file = path.join(pkgDir, 'names.json');
  if (!fs.existsSync(file)) return glue;
  const names = JSON.parse(fs.readFileSync(file, 'utf8'));
  const once = (text, pattern, replacement, what) => {
    let count = 0;
    const out = text.replace(pattern, (...m) => (count++, replacement(...m)));
    if (count !== 1) throw new Error(`the wasm-bindgen glue changed: ${what} found ${count} times`);
    return out;
  };
  // The imports object wasm-bindgen returns: module name → the variable holding its functions.
  const modules = new Map();
  const returned = /return \{\n\s+__proto__: null,\n((?:\s+"[^"]+": import\d+,\n)+)\s+\};/;
  const block = glue.match(returned);
  if (!block) throw new Error('the wasm-bindgen glue changed: its imports object was not found');
  for (const [, module, variable] of block[1].matchAll(/"([^"]+)": (import\d+),/g)) modules.set(module, variable);
  const own = modules.get('./skapi_wasm_bg.js');
  // What the minified wasm asks for and offers: the glue must match it exactly.
  const wasmModule = new WebAssembly.Module(fs.readFileSync(path.join(pkgDir, 'skapi_wasm_bg.wasm')));
  const [newModule, ...others] = new Set(WebAssembly.Module.imports(wasmModule).map((i) => i.module));
  if (others.length) throw new Error('the minified wasm imports from more than one module');
  // The glue's own import functions are renamed where they are defined; the snippets' (module
  // namespaces) are listed under their new names.
  const moved = [];
  for (const [module, from, to] of names.imports) {
    const variable = modules.get(module);
    if (!variable) throw new Error(`names.json names an import of unknown module ${module}`);
    if (variable === own) glue = once(glue, new RegExp(`^(\\s+)${from}: function\\(`, 'm'), (_, indent) => `${indent}${to}: function(`, `import ${from}`);
    else moved.push(`${JSON.stringify(to)}: ${variable}.${from}`);
  }
  glue = glue.replace(returned, () => `return { __proto__: null, ${JSON.stringify(newModule)}: { ...${own}, ${moved.join(', ')} } };`);
  for (const [from, to] of names.exports) glue = glue.replace(new RegExp(`\\bwasm\\.${from}\\b`, 'g'), () => `wasm.${to}`);
  const exported = new Set(WebAssembly.Module.exports(wasmModule).map((e) => e.name));
  const unknown = [...glue.matchAll(/\bwasm\.([A-Za-z_$][\w$]*)/g)].map((m) => m[1]).filter((n) => !exported.has(n));
  if (unknown.length) throw new Error(`the glue uses exports the wasm lacks: ${[...new Set(unknown)].join(', ')}`);
  return glue;
}

const snippet = fs.readdirSync(path.join(pkgDir, 'snippets'), { recursive: true })
  .map((f) => path.join(pkgDir, 'snippets', f))
  .find((f) => f.endsWith('.js') && fs.readFileSync(f, 'utf8').includes('class SkapiError'));
if (!snippet) throw new Error('SkapiError not found in the snippets');
const wasm = path.join(pkgDir, 'skapi_wasm_bg.wasm');
// Inline as base64 of its gzip (the page inflates it with DecompressionStream): base64 of the
// raw wasm would weigh a third more than the wasm itself, even gzipped again by the server.
// Zopfli writes that gzip ≈ 5 % smaller than zlib's best (a few seconds of build time).
const packed = Buffer.from(await gzipAsync(fs.readFileSync(wasm), { numiterations: 15 })).toString('base64');
fs.writeFileSync(path.join(pkgDir, 'skapi_wasm_inline.mjs'), `export default ${JSON.stringify(packed)};\n`);

fs.mkdirSync(distDir, { recursive: true });
const alias = {
  'skapi-wasm-glue': path.resolve(glue),
  'skapi-wasm-inline': path.resolve(pkgDir, 'skapi_wasm_inline.mjs'),
  'skapi-wasm-error': path.resolve(snippet),
};
const common = { bundle: true, minify: true, alias, target: 'es2022', legalComments: 'none', logLevel: 'warning' };
await build({ ...common, entryPoints: ['js/esm-entry.mjs'], format: 'esm', outfile: path.join(distDir, 'skapi.mjs') });
await build({ ...common, entryPoints: ['js/global-entry.mjs'], format: 'iife', outfile: path.join(distDir, 'skapi.js') });
fs.copyFileSync(wasm, path.join(distDir, 'skapi_wasm_bg.wasm'));
fs.copyFileSync('js/skapi.d.ts', path.join(distDir, 'skapi.d.ts'));
