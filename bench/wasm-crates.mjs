// Where a wasm's bytes go, by crate: function bodies grouped by the first `crate::` in their
// (demangled) names from the name section, plus data. Reads a wasm that still has its names
// (rustc's output, before wasm-opt strips them). Usage: node bench/wasm-crates.mjs FILE [N]
import fs from 'node:fs';

const [file, topArg] = process.argv.slice(2);
const bytes = fs.readFileSync(file);
let at = 8;
const leb = () => {
  let result = 0, shift = 0, b;
  do { b = bytes[at++]; result += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
  return result;
};
const name = () => { const n = leb(); const s = bytes.subarray(at, at + n).toString('utf8'); at += n; return s; };

let imported = 0;
const bodies = [];
const names = new Map();
let data = 0;
while (at < bytes.length) {
  const id = bytes[at++];
  const size = leb();
  const end = at + size;
  if (id === 2) {
    for (let i = leb(); i > 0; i--) {
      name(); name();
      const kind = bytes[at++];
      if (kind === 0) { leb(); imported++; }
      else if (kind === 1) { at++; const flags = leb(); leb(); if (flags & 1) leb(); }
      else if (kind === 2) { const flags = leb(); leb(); if (flags & 1) leb(); }
      else if (kind === 3) { at += 2; }
      else if (kind === 4) { at++; leb(); }
    }
  } else if (id === 10) {
    for (let i = leb(); i > 0; i--) { const n = leb(); bodies.push(n); at += n; }
  } else if (id === 11) {
    data += size;
  } else if (id === 0 && name() === 'name') {
    while (at < end) {
      const sub = bytes[at++];
      const subSize = leb();
      const subEnd = at + subSize;
      if (sub === 1) for (let i = leb(); i > 0; i--) { const idx = leb(); names.set(idx, name()); }
      at = subEnd;
    }
  }
  at = end;
}

// The crate of a symbol: v0-mangled (`_R…`), legacy-mangled (`_ZN<len><crate>…`; `<T as Trait>` impls begin with
// `_$LT$`, whose first path is the type's crate) or already demangled (`crate::…`).
function crateOf(fn) {
  const mangled = fn.match(/^_ZN(\d+)(.*)$/);
  if (mangled) {
    let ident = mangled[2].slice(0, Number(mangled[1]));
    ident = ident.replace(/^_\$LT\$/, '').replace(/^(\$RF\$|mut\$u20\$|\$u5b\$)+/, '');
    const inner = ident.match(/^([A-Za-z_][A-Za-z0-9_]*)(\.\.|$)/);
    return inner ? inner[1] : ident.split('..')[0] || '(other)';
  }
  // v0 mangling (`_R…C<disambiguator>_<len><crate>…`): the first crate root named.
  const v0 = fn.startsWith('_R') && fn.match(/C(?:s[0-9A-Za-z]*_)?(\d+)([A-Za-z_][A-Za-z0-9_]*)/);
  if (v0) return v0[2].slice(0, Number(v0[1]));
  const plain = fn.match(/([A-Za-z_][A-Za-z0-9_]*)::/);
  return plain ? plain[1] : fn ? '(other)' : '(unnamed)';
}

const crates = new Map();
bodies.forEach((size, i) => {
  const crate = crateOf(names.get(imported + i) || '');
  crates.set(crate, (crates.get(crate) || 0) + size);
});
crates.set('(data: strings, tables)', data);
const total = [...crates.values()].reduce((a, b) => a + b, 0);
const rows = [...crates.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg || 14));
for (const [crate, size] of rows) {
  console.log(`${crate.padEnd(32)} ${(size / 1024).toFixed(1).padStart(8)} KB ${((100 * size) / total).toFixed(1).padStart(6)} %`);
}
console.log(`${'total (code + data, raw)'.padEnd(32)} ${(total / 1024).toFixed(1).padStart(8)} KB`);
