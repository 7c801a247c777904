// The bundler entry: the wasm travels inside this module (base64 of its gzip), so Vite,
// webpack, esbuild and Rollup need no plugin and no asset rule.
import init, * as glue from 'skapi-wasm-glue';
import wasmBase64 from 'skapi-wasm-inline';
import { SkapiError } from 'skapi-wasm-error';
import { defineSkapi } from './wrapper.mjs';

export { SkapiError };
export { isPollStopped } from './wrapper.mjs';

/** The wasm, inflated (DecompressionStream: every current browser, Node.js 18+). */
function wasmBytes() {
  const packed = Uint8Array.from(atob(wasmBase64), (c) => c.charCodeAt(0));
  const inflated = new Blob([packed]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(inflated).arrayBuffer();
}

export const Skapi = defineSkapi(() => wasmBytes().then((bytes) => init({ module_or_path: bytes })).then(() => glue), SkapiError);
export default Skapi;
