// Several devices per name and key recovery (docs/web.md "Devices and backup", docs/protocol.md
// "Devices", "Key backup file"): the owner device (the first that used the name) shows a link
// code and approves a new device's key; any device lists the name's devices, the owner removes
// them; every device can back up its key to a file and a fresh browser can restore it.

import { loadIdentity, saveIdentity, hasIdentity } from './identity.js';
import { newId, normalizeNodeURLs } from './signaling.js';
import { BackupError, openBackup, sealIdentity } from './backup.js';
import { t } from './i18n.js';

const $ = (id) => document.getElementById(id);
const SUBPROTOCOL = 'meshnode.v1';

/** What a person compares on both screens: the first 16 characters of the key, in fours. */
export function fingerprint(key) {
  return String(key).slice(0, 16).replace(/(.{4})(?=.)/g, '$1 ');
}

/** Shows `text` on a status line; `error` colours it. */
function status(id, text, error = false) {
  const line = $(id);
  line.textContent = text;
  if (error) line.dataset.kind = 'error';
  else delete line.dataset.kind;
}

/** The page's text for a node error body or a BackupError. */
export function errorText(error) {
  if (error instanceof BackupError) return t(`backup.error.${error.code}`, { detail: error.detail });
  const code = error?.code || 'error';
  const key = `devices.error.${code}`;
  const text = t(key);
  return text === key ? `${code}: ${error?.reason || error?.message || ''}` : text;
}

/**
 * Claims a link code for `name` with this browser's key for that name, before login, on a
 * WebSocket of its own: resolves once the owner endorsed the key, rejects with the node's error
 * body. `onWaiting(key)` is called when the code matched and the owner is asked.
 */
export async function claimDevice(url, name, code, onWaiting = () => {}) {
  const identity = await loadIdentity(name);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, SUBPROTOCOL);
    const id = newId('d');
    // The owner has the code's lifetime (5 min) to answer; a little more here.
    const timer = setTimeout(() => finish(reject, { code: 'timeout', reason: 'no answer' }), 330000);
    // The node drops a connection silent for 1.5 heartbeats (15 s by default): ping while the
    // owner decides (docs/protocol.md "Liveness", "Devices").
    const pinger = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: 'ping', id: newId('p'), from: '', to: '@node', body: {} })), 5000);
    function finish(how, value) {
      clearTimeout(timer);
      clearInterval(pinger);
      ws.onclose = null;
      ws.close(1000, 'claim done');
      how(value);
    }
    ws.onclose = () => finish(reject, { code: 'disconnected', reason: 'the node closed the connection' });
    ws.onerror = () => {};
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      const body = message.body || {};
      if (message.type === 'challenge') {
        ws.send(JSON.stringify({ type: 'device-claim', id, from: '', to: '@node', body: { name, code, key: identity.publicKey } }));
      } else if (message.type === 'ack' && body.of === id) {
        onWaiting(identity.publicKey);
      } else if (message.type === 'device-added' && body.of === id) {
        finish(resolve, { name, key: identity.publicKey, owner: body.owner });
      } else if (message.type === 'error' && body.of === id) {
        finish(reject, body);
      } else if (message.type === 'ping') {
        ws.send(JSON.stringify({ type: 'pong', id: message.id, from: '', to: '@node', body: {} }));
      }
    };
  });
}

/**
 * The devices part of the page. `app` is app.js's state (client, identity, call); `login` logs
 * in with the node field and a name; `log` records events for the tests.
 */
export class Devices {
  constructor({ app, login, log }) {
    this.app = app;
    this.login = login;
    this.log = log;
    this.welcome = null;
    this.list = [];
    this.code = null;
    this.request = null;
    this.codeTimer = null;
  }

  /** This device holds the owner key of its name (the node says `owner` only to linked devices). */
  get isOwner() {
    return !!this.welcome && !this.welcome.owner;
  }

  wire() {
    $('devices-open').onclick = () => this.open();
    $('make-code').onclick = () => this.makeCode().catch((error) => status('devices-status', errorText(error), true));
    $('link-form').onsubmit = (e) => {
      e.preventDefault();
      this.link($('node').value, $('link-name').value.trim(), $('link-code').value.trim()).catch(() => {});
    };
    $('restore-form').onsubmit = (e) => {
      e.preventDefault();
      const file = $('restore-file').files[0];
      if (!file) return;
      file.text().then((text) => this.restore(text, $('restore-pass').value)).catch(() => {});
    };
    $('backup-form').onsubmit = (e) => {
      e.preventDefault();
      this.backup($('backup-pass').value, $('backup-pass2').value, true).catch(() => {});
    };
    $('device-request').addEventListener('close', () => {
      const request = this.request;
      this.request = null;
      if (!request) return;
      const allowed = $('device-request').returnValue === 'allow';
      (allowed ? this.endorse(request.key) : this.revoke(request.key)).catch((error) => status('devices-status', errorText(error), true));
    });
  }

  /** After every login (`welcome` body). */
  welcomed(body) {
    this.welcome = body;
    $('devices-open').hidden = false;
  }

  loggedOut() {
    this.welcome = null;
    this.list = [];
    this.clearCode();
    $('devices-open').hidden = true;
    if ($('devices-dialog').open) $('devices-dialog').close();
    if ($('device-request').open) $('device-request').close();
  }

  /** A message after login; true when it was a device message. */
  message(msg) {
    const body = msg.body || {};
    if (msg.type === 'device-request') {
      if (!this.isOwner) return true;
      this.request = body;
      this.clearCode();
      this.log('device-request', { key: body.key });
      $('request-text').textContent = t('request.text', { name: body.name, fingerprint: fingerprint(body.key) });
      $('device-request').returnValue = '';
      if ($('devices-dialog').open) $('devices-dialog').close();
      $('device-request').showModal();
      $('request-allow').focus();
      return true;
    }
    if (msg.type === 'answered-elsewhere') {
      const call = this.app.call;
      this.log('answered-elsewhere', body);
      if (call && call.id === body.call && call.state === 'ringing-in') call.end('answered-elsewhere');
      return true;
    }
    return false;
  }

  /** Sends a device request and waits for the node's reply of type `reply` (or its ack). */
  ask(type, body = {}, reply = 'ack') {
    const client = this.app.client;
    if (!client) return Promise.reject({ code: 'disconnected', reason: 'not logged in' });
    if (reply === 'ack') return client.request(type, '@node', body);
    return new Promise((resolve, reject) => {
      const id = newId('d');
      const timer = setTimeout(() => done(reject, { code: 'timeout', reason: `no answer to ${type}` }), 10000);
      const listener = (e) => {
        const m = e.detail;
        if (m.body?.of !== id) return;
        if (m.type === reply) done(resolve, m.body);
        else if (m.type === 'error') done(reject, m.body);
      };
      function done(how, value) {
        clearTimeout(timer);
        client.removeEventListener('message', listener);
        how(value);
      }
      client.addEventListener('message', listener);
      client.send(type, '@node', body, id);
    });
  }

  async open() {
    $('devices-dialog').showModal();
    status('devices-status', '');
    status('backup-status', '');
    this.render();
    await this.refresh().catch((error) => status('devices-status', errorText(error), true));
    $('devices-close').focus();
  }

  async refresh() {
    const body = await this.ask('devices', {}, 'devices');
    this.list = Array.isArray(body.devices) ? body.devices : [];
    this.render();
    return this.list;
  }

  render() {
    const me = this.app.identity?.publicKey;
    $('devices-role').textContent = this.isOwner ? t('devices.youAreOwner') : t('devices.youAreLinked');
    $('link-new').hidden = !this.isOwner;
    const items = this.list.map((device) => {
      const li = document.createElement('li');
      const what = document.createElement('span');
      const label = device.key === me ? t('devices.thisDevice') : device.owner ? t('devices.ownerDevice') : t('devices.linkedDevice');
      what.textContent = `${label} · ${device.online ? t('devices.online') : t('devices.offline')}`;
      const print = document.createElement('span');
      print.className = 'fingerprint';
      print.textContent = fingerprint(device.key);
      li.append(what, print);
      if (this.isOwner && !device.owner) {
        const remove = document.createElement('button');
        remove.type = 'button';
        remove.className = 'danger';
        remove.textContent = t('devices.remove');
        remove.setAttribute('aria-label', t('devices.removeLabel', { fingerprint: fingerprint(device.key) }));
        remove.onclick = () => this.revoke(device.key).catch((error) => status('devices-status', errorText(error), true));
        li.append(remove);
      }
      return li;
    });
    $('device-list').replaceChildren(...items);
  }

  /** Rewords what this part drew itself, after a language switch. */
  retranslate() {
    if ($('devices-dialog').open) this.render();
    if (this.code && this.tick) this.tick();
    if (this.request) $('request-text').textContent = t('request.text', { name: this.request.name, fingerprint: fingerprint(this.request.key) });
  }

  clearCode() {
    clearInterval(this.codeTimer);
    this.code = null;
    $('code-box').hidden = true;
  }

  async makeCode() {
    const body = await this.ask('device-code', {}, 'device-code');
    this.code = body.code;
    const until = Date.now() + (Number(body.expires) || 300) * 1000;
    $('code-value').textContent = body.code;
    $('code-box').hidden = false;
    const tick = () => {
      const left = Math.max(0, Math.round((until - Date.now()) / 1000));
      $('code-expiry').textContent = t('devices.codeExpires', { m: Math.floor(left / 60), s: String(left % 60).padStart(2, '0') });
      if (!left) this.clearCode();
    };
    clearInterval(this.codeTimer);
    this.tick = tick;
    this.codeTimer = setInterval(tick, 1000);
    tick();
    return body.code;
  }

  /** The owner signs the endorsement of `key` (docs/protocol.md "Devices"). */
  async endorse(key) {
    const name = this.app.identity.name;
    const sig = await this.app.identity.sign(`meshnode.v1 device\n${name}\n${key}`);
    await this.ask('endorse', { key, sig });
    this.log('endorsed', { key });
    status('devices-status', t('devices.added', { fingerprint: fingerprint(key) }));
  }

  async revoke(key) {
    await this.ask('revoke', { key });
    this.log('revoked', { key });
    status('devices-status', t('devices.removed', { fingerprint: fingerprint(key) }));
    if ($('devices-dialog').open) await this.refresh();
  }

  /** The new device's side: claim the code, wait for the owner, then log in. */
  async link(node, name, code) {
    status('link-status', t('link.sending'));
    try {
      await claimDevice(normalizeNodeURLs(node)[0], name, code, (key) => status('link-status', t('link.waiting', { fingerprint: fingerprint(key) })));
      status('link-status', t('link.done'));
      this.log('linked', { name });
      $('name').value = name;
      return await this.login(node, name);
    } catch (error) {
      status('link-status', errorText(error), true);
      throw error;
    }
  }

  /** Backs up this device's key: resolves with the file's text (and offers it as a download). */
  async backup(passphrase, again, download = false) {
    try {
      if (passphrase !== again) throw new BackupError('mismatch');
      if ((passphrase || '').length < 8) throw new BackupError('short');
      status('backup-status', t('backup.working'));
      const text = await sealIdentity(this.app.identity, passphrase);
      if (download) {
        const link = document.createElement('a');
        link.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
        link.download = `meshnode-${this.app.identity.name}-key-backup.json`;
        link.click();
        setTimeout(() => URL.revokeObjectURL(link.href), 60000);
      }
      $('backup-pass').value = '';
      $('backup-pass2').value = '';
      status('backup-status', t('backup.done'));
      this.log('backup', {});
      return text;
    } catch (error) {
      status('backup-status', errorText(error), true);
      throw error;
    }
  }

  /** A fresh browser: restores the key from a backup's text, then logs in with it. */
  async restore(text, passphrase) {
    status('restore-status', t('restore.working'));
    try {
      const opened = await openBackup(text, passphrase);
      const name = opened.name || $('name').value.trim();
      if (!name) throw new BackupError('no-name');
      if (await hasIdentity(name)) {
        const current = await loadIdentity(name);
        if (current.publicKey !== opened.publicKey) this.log('restore-replaces', { name });
      }
      await saveIdentity(name, opened.privateKey, opened.publicKey);
      status('restore-status', t('restore.done', { name }));
      this.log('restored', { name });
      $('name').value = name;
      return await this.login($('node').value, name);
    } catch (error) {
      status('restore-status', errorText(error), true);
      throw error;
    }
  }
}
