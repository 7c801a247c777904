// The bundler entry: the wasm travels inside this module (base64), so Vite, webpack, esbuild
// and Rollup need no plugin and no asset rule.
import init, * as glue from 'skapi-wasm-glue';
import wasmBase64 from 'skapi-wasm-inline';
import { defineSkapi } from './wrapper.mjs';

export { SkapiError } from 'skapi-wasm-error';
export { isPollStopped } from './wrapper.mjs';

function wasmBytes() {
  const text = atob(wasmBase64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

export const Skapi = defineSkapi(() => init({ module_or_path: wasmBytes() }).then(() => glue));
export default Skapi;
