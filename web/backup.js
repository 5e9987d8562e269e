// The key backup file (docs/protocol.md "Key backup file"): the browser's Ed25519 key sealed
// under a passphrase, in the JSON format the CLI reads and writes too (`meshnode keygen
// --backup/--restore`). WebCrypto has no Argon2, so the page writes PBKDF2-SHA256 with 600,000
// iterations (OWASP 2023) and AES-256-GCM; it reads those files, the CLI reads both kinds.

import { fromBase64, toBase64 } from './identity.js';

export const FORMAT = 'meshnode-key-backup';
export const ITERATIONS = 600000;
const MAX_ITERATIONS = 10000000;
// RFC 8410 §7: a PKCS #8 Ed25519 private key is this 16-byte prefix and the 32-byte seed.
const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/** A backup that cannot be made or opened; `code` says which case (messages-*.js `backup.*`). */
export class BackupError extends Error {
  constructor(code, detail = '') {
    super(`${code}${detail ? ': ' + detail : ''}`);
    this.code = code;
    this.detail = detail;
  }
}

/** Every field but the ciphertext and the check, one a line: AES-GCM's associated data. */
export function headerText(b) {
  const params = b.kdf?.name === 'argon2id' ? `opslimit=${b.kdf.opslimit ?? 0},memlimit=${b.kdf.memlimit ?? 0}` : `iterations=${b.kdf?.iterations ?? 0}`;
  return [`${FORMAT} v${b.version}`, b.name ?? '', b.key, b.kdf?.name, params, b.kdf?.salt, b.cipher?.name, b.cipher?.nonce].join('\n');
}

async function digest(b) {
  const hash = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(headerText(b) + '\n' + b.ciphertext));
  return [...new Uint8Array(hash)].map((x) => x.toString(16).padStart(2, '0')).join('');
}

async function stretch(passphrase, salt, iterations) {
  const material = await crypto.subtle.importKey('raw', new TextEncoder().encode(passphrase.normalize('NFC')), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, material, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/** The backup of `identity` (from identity.js) as the file's JSON text. */
export async function sealIdentity(identity, passphrase) {
  if (!passphrase) throw new BackupError('empty');
  let pkcs8;
  try {
    pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', identity.privateKey));
  } catch {
    // Keys made before backups existed were not extractable.
    throw new BackupError('not-extractable');
  }
  const seed = pkcs8.slice(pkcs8.length - 32);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const backup = {
    format: FORMAT, version: 1, name: identity.name, key: identity.publicKey,
    kdf: { name: 'pbkdf2-sha256', iterations: ITERATIONS, salt: toBase64(salt) },
    cipher: { name: 'aes-256-gcm', nonce: toBase64(nonce) },
  };
  const key = await stretch(passphrase, salt, ITERATIONS);
  const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: new TextEncoder().encode(headerText(backup)) }, key, seed);
  backup.ciphertext = toBase64(sealed);
  backup.check = await digest(backup);
  return JSON.stringify(backup, null, 2) + '\n';
}

/**
 * Opens a backup file's text: `{name, privateKey, publicKey}` (an extractable CryptoKey), or a
 * BackupError: `not-backup`, `changed`, `argon2` (a CLI file the page cannot stretch),
 * `too-weak`, `wrong-passphrase`.
 */
export async function openBackup(text, passphrase) {
  let b;
  try {
    b = JSON.parse(text);
  } catch {
    throw new BackupError('not-backup');
  }
  if (!b || b.format !== FORMAT || b.version !== 1 || typeof b.ciphertext !== 'string' || typeof b.key !== 'string') throw new BackupError('not-backup');
  if (b.check !== (await digest(b))) throw new BackupError('changed');
  if (b.kdf?.name === 'argon2id') throw new BackupError('argon2');
  if (b.kdf?.name !== 'pbkdf2-sha256' || b.cipher?.name !== 'aes-256-gcm') throw new BackupError('not-backup');
  const iterations = b.kdf.iterations;
  if (!Number.isInteger(iterations) || iterations < ITERATIONS || iterations > MAX_ITERATIONS) throw new BackupError('too-weak', String(iterations));
  let seed;
  try {
    const key = await stretch(passphrase, fromBase64(b.kdf.salt), iterations);
    seed = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: fromBase64(b.cipher.nonce), additionalData: new TextEncoder().encode(headerText(b)) }, key, fromBase64(b.ciphertext)));
  } catch {
    throw new BackupError('wrong-passphrase');
  }
  if (seed.length !== 32) throw new BackupError('changed');
  const pkcs8 = new Uint8Array([...PKCS8_PREFIX, ...seed]);
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
  // The public key, from the private key's JWK (`x`, base64url): it must be the one the file names.
  const jwk = await crypto.subtle.exportKey('jwk', privateKey);
  const publicKey = toBase64(fromBase64(jwk.x.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (jwk.x.length % 4)) % 4)));
  if (publicKey !== b.key) throw new BackupError('changed');
  return { name: typeof b.name === 'string' ? b.name : '', privateKey, publicKey };
}
