// The payload a page downloads, measured on the packed tarball (each file gzip -9, as
// bench/size.sh prints it). Bytes are deterministic, so this is a test, not a benchmark.
//
// The budgets, the design card's ceiling: the script tag (the file `unpkg` names plus the .wasm
// it loads) at most 69,000 bytes — under `skapi-js@1.5.8`'s 69,313 — and the bundler entry (plus
// any .wasm it names) at most 68,000. They hold the SDK as its design card has it (the browser's
// APIs through web-sys, waits through gloo-timers, the flows in Rust) with Skapi's current door
// (`forwardRequest`: BENCHMARKS.md); a new capability wins back what it adds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BUDGET = { scriptTag: 69_000, bundler: 68_000 };

const tarball = process.env.SKAPI_TEST_TARBALL;
const gz = (file) => execFileSync('gzip', ['-9c', file], { maxBuffer: 64 << 20 }).length;

function unpacked() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skapi-size-'));
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  return path.join(dir, 'package');
}

test('the script tag and the bundler entry stay within their budgets', () => {
  assert.ok(tarball, 'run through scripts/test-browser.sh (SKAPI_TEST_TARBALL)');
  const pkg = unpacked();
  const meta = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8'));
  const scriptTag = gz(path.join(pkg, meta.unpkg)) + gz(path.join(pkg, 'dist/skapi_wasm_bg.wasm'));
  const esm = path.join(pkg, meta.module);
  const named = [...new Set(fs.readFileSync(esm, 'utf8').match(/[\w./-]+\.wasm/g) || [])]
    .map((f) => path.join(pkg, 'dist', path.basename(f)))
    .filter((f) => fs.existsSync(f));
  const bundler = gz(esm) + named.reduce((sum, f) => sum + gz(f), 0);
  console.log(`script tag ${scriptTag} bytes (budget ${BUDGET.scriptTag}); bundler ${bundler} bytes (budget ${BUDGET.bundler})`);
  assert.ok(scriptTag <= BUDGET.scriptTag, `the script tag weighs ${scriptTag} bytes gzipped, over its budget of ${BUDGET.scriptTag}`);
  assert.ok(bundler <= BUDGET.bundler, `the bundler entry weighs ${bundler} bytes gzipped, over its budget of ${BUDGET.bundler}`);
});
