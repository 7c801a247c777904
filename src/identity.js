// The browser side of src/identity.rs: localStorage and random bytes.

function store() {
  try {
    return localStorage;
  } catch {
    return null; // storage disabled (privacy settings, sandboxed frames)
  }
}

/** The identifier stored under `key`, or a fresh one (128 random bits as hex) kept there. */
export function publicIdentifier(key) {
  const storage = store();
  const existing = storage?.getItem(key);
  if (existing && /^[0-9a-fA-F]{32}$/.test(existing)) return existing;
  const bytes = new Uint8Array(16);
  if (globalThis.crypto?.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256); // no Web Crypto: very old hosts
  const fresh = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  try {
    storage?.setItem(key, fresh);
  } catch {
    // Full storage: the identifier lasts this page's life.
  }
  return fresh;
}
