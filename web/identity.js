// The browser's identity: an Ed25519 key pair made with WebCrypto, one per name, kept in
// IndexedDB. The private key never leaves the browser except sealed under the user's
// passphrase in a backup file (backup.js), which is why new keys are extractable.

const DB_NAME = 'meshnode';
const STORE = 'identities';

export function toBase64(bytes) {
  let text = '';
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text);
}

export function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function transact(db, mode, work) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const request = work(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = () => reject(tx.error);
  });
}

/** Whether this browser can make and use the identity (a secure context with Ed25519). */
export function identitySupport() {
  if (!globalThis.isSecureContext || !crypto.subtle) {
    return 'WebCrypto needs a secure context: open the page over https, or at http://localhost / http://127.0.0.1';
  }
  if (!globalThis.indexedDB) return 'this browser has no IndexedDB to keep the key in';
  return null;
}

/** The identity for `name`: loaded from IndexedDB, or made and stored on first use. */
export async function loadIdentity(name) {
  const db = await openDatabase();
  try {
    let record = await transact(db, 'readonly', (s) => s.get(name));
    if (!record) {
      // Extractable so that "Back up my key" can seal it under a passphrase (backup.js); the
      // page never sends it anywhere else.
      const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
      const raw = await crypto.subtle.exportKey('raw', pair.publicKey);
      record = { privateKey: pair.privateKey, publicKey: toBase64(raw), created: Date.now() };
      await transact(db, 'readwrite', (s) => s.put(record, name));
    }
    return new Identity(name, record.privateKey, record.publicKey);
  } finally {
    db.close();
  }
}

export class Identity {
  constructor(name, privateKey, publicKey) {
    this.name = name;
    this.privateKey = privateKey;
    /** Base64 of the raw 32-byte public key: the identity on the wire. */
    this.publicKey = publicKey;
  }

  /** Base64 Ed25519 signature (RFC 8032) of the UTF-8 bytes of `text`. */
  async sign(text) {
    const sig = await crypto.subtle.sign({ name: 'Ed25519' }, this.privateKey, new TextEncoder().encode(text));
    return toBase64(sig);
  }
}

/** Whether `sig` (base64) is a valid signature of `text` by `key` (base64 raw public key). */
export async function verifySignature(key, sig, text) {
  try {
    const publicKey = await crypto.subtle.importKey('raw', fromBase64(key), { name: 'Ed25519' }, false, ['verify']);
    return await crypto.subtle.verify({ name: 'Ed25519' }, publicKey, fromBase64(sig), new TextEncoder().encode(text));
  } catch {
    return false;
  }
}

/** Stores `privateKey` (a CryptoKey) as the identity of `name` in this browser, replacing any. */
export async function saveIdentity(name, privateKey, publicKey) {
  const db = await openDatabase();
  try {
    await transact(db, 'readwrite', (s) => s.put({ privateKey, publicKey, created: Date.now() }, name));
  } finally {
    db.close();
  }
  return new Identity(name, privateKey, publicKey);
}

/** Whether this browser already holds a key for `name`. */
export async function hasIdentity(name) {
  const db = await openDatabase();
  try {
    return !!(await transact(db, 'readonly', (s) => s.get(name)));
  } finally {
    db.close();
  }
}
