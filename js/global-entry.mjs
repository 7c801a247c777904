// The <script src> entry: defines the globals `Skapi` and `SkapiError`, and fetches the wasm
// file that sits beside this script.
import init, * as glue from 'skapi-wasm-glue';
import { SkapiError } from 'skapi-wasm-error';
import { defineSkapi } from './wrapper.mjs';

const script = document.currentScript;
const wasmUrl = new URL('skapi_wasm_bg.wasm', script && script.src ? script.src : document.baseURI);

window.Skapi = defineSkapi(() => init({ module_or_path: wasmUrl }).then(() => glue), SkapiError);
window.SkapiError = SkapiError;
