// The signaling client (docs/protocol.md): WebSocket at /ws with subprotocol meshnode.v1,
// login by challenge, ping/pong liveness, reconnect every 5 s plus up to 1 s of jitter, and
// session resume (log in again, renew subscriptions, resend unacknowledged chat with the same ids).
// With several node URLs (the members of a cluster, docs/cluster.md) a lost connection moves to
// the next URL at once; the 5 s wait comes only once every URL failed since the last login.

const SUBPROTOCOL = 'meshnode.v1';
const RECONNECT_MS = 5000;
const JITTER_MS = 1000;
const CONNECT_TIMEOUT_MS = 10000;
const FAILOVER_CONNECT_TIMEOUT_MS = 3000;
/** Node URLs a client tries at most: those the user gave and the cluster members a node names. */
const MAX_NODE_URLS = 32;

let counter = 0;
/** A fresh message id: unique per sender (random prefix per page load, then a counter). */
const idPrefix = Math.random().toString(36).slice(2, 10);
export function newId(kind = 'm') {
  counter += 1;
  return `${kind}-${idPrefix}-${counter}`;
}

/** The WebSocket URL of the node that served this page. */
export function defaultNodeURL(location = globalThis.location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

/** Turns what a user typed ("host:port", "http://host:port", "ws://host:port/ws") into a ws URL. */
export function normalizeNodeURL(text) {
  let value = (text || '').trim();
  if (!value) return defaultNodeURL();
  if (!/^[a-z]+:\/\//i.test(value)) value = 'ws://' + value;
  const url = new URL(value);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/ws';
  return url.toString();
}

/**
 * Several node URLs, as a user types them into the node field: separated by commas or spaces,
 * each as `normalizeNodeURL` takes it. Nothing typed: the node that served this page.
 */
export function normalizeNodeURLs(text) {
  const parts = (text || '').split(/[\s,]+/).filter(Boolean);
  return parts.length ? [...new Set(parts.map(normalizeNodeURL))] : [defaultNodeURL()];
}

/**
 * `host:port` of a ws(s) URL as a login names it: lower case, the port always written (80 for
 * ws, 443 for wss), an IPv6 host in brackets (as URL gives it).
 */
export function loginAuthority(text) {
  const url = new URL(text);
  const port = url.port || (url.protocol === 'wss:' || url.protocol === 'https:' ? '443' : '80');
  return `${url.hostname.toLowerCase()}:${port}`;
}

/**
 * Events (CustomEvent, details in `detail`): `state` {state, reason}, `welcome` (body),
 * `message` (every envelope after login), `presence`, `chat`, `chat-status` (message record),
 * `room` (a room event's body), `error` (body).
 */
export class SignalingClient extends EventTarget {
  constructor({ url, urls, identity }) {
    super();
    /** Every URL of the node (cluster members), tried in turn; `url` is the one in use. */
    this.urls = urls?.length ? urls : [url];
    this.url = url ?? this.urls[0];
    /** URLs that failed one after another since the last login. */
    this.failedInRow = 0;
    this.identity = identity;
    this.name = identity.name;
    /** connecting | online | reconnecting | refused | replaced | stopped */
    this.state = 'connecting';
    this.reason = '';
    this.subscriptions = new Set();
    /** Chat messages sent and not yet acknowledged by the node, by id, in sending order. */
    this.pending = new Map();
    this.pendingAcks = new Map();
    this.heartbeat = 15;
    this.iceServers = [];
    this.reconnects = 0;
    this.loginMs = null;
    this.nextAttemptAt = null;
    this.ws = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopTimers();
    if (this.ws) this.ws.close(1000, 'logout');
    this.setState('stopped', 'logged out');
  }

  setState(state, reason = '') {
    this.state = state;
    this.reason = reason;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, reason } }));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.nextAttemptAt = null;
    this.attemptStarted = performance.now();
    let ws;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch (error) {
      this.setState('refused', `bad node address: ${error.message}`);
      return;
    }
    this.ws = ws;
    this.loggedIn = false;
    // With another URL to try, a member that does not answer is given up sooner: the client
    // must be logged in again within 5 s of losing its node (docs/protocol.md "Liveness").
    const connectTimer = setTimeout(() => ws.close(), this.urls.length > 1 ? FAILOVER_CONNECT_TIMEOUT_MS : CONNECT_TIMEOUT_MS);
    ws.onopen = () => clearTimeout(connectTimer);
    ws.onmessage = (event) => this.receive(ws, event.data);
    ws.onclose = () => {
      clearTimeout(connectTimer);
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopTimers();
      if (this.stopped || this.state === 'replaced' || this.state === 'refused') return;
      this.failedInRow += 1;
      this.url = this.urls[(this.urls.indexOf(this.url) + 1) % this.urls.length];
      if (this.failedInRow < this.urls.length) {
        // Failover: another member of the cluster, at once.
        this.setState('reconnecting', `trying ${loginAuthority(this.url)}`);
        this.reconnects += 1;
        this.connect();
      } else {
        this.failedInRow = 0;
        this.scheduleReconnect();
      }
    };
  }

  /** Reconnect every 5 s plus a random 0–1 s, until it succeeds (docs/protocol.md "Liveness"). */
  scheduleReconnect() {
    const delay = RECONNECT_MS + Math.random() * JITTER_MS;
    this.nextAttemptAt = Date.now() + delay;
    this.setState('reconnecting', `next attempt in ${(delay / 1000).toFixed(1)} s`);
    this.retryTimer = setTimeout(() => {
      this.reconnects += 1;
      this.connect();
    }, delay);
  }

  stopTimers() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  sendEnvelope(envelope) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(envelope));
    return true;
  }

  /** Sends a message; returns its id. */
  send(type, to, body = {}, id = newId(type[0])) {
    this.sendEnvelope({ type, id, from: this.loggedIn ? this.name : '', to, body });
    return id;
  }

  /** Sends and resolves with the node's `ack` body, or rejects with the `error` body. */
  request(type, to, body = {}, timeoutMs = 10000) {
    const id = newId(type[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(id);
        reject({ code: 'timeout', reason: `no answer to ${type} within ${timeoutMs / 1000} s` });
      }, timeoutMs);
      this.pendingAcks.set(id, { resolve, reject, timer });
      if (!this.send(type, to, body, id)) {
        clearTimeout(timer);
        this.pendingAcks.delete(id);
        reject({ code: 'disconnected', reason: 'not connected to the node' });
      }
    });
  }

  settle(of, outcome, body) {
    const waiter = this.pendingAcks.get(of);
    if (!waiter) return;
    this.pendingAcks.delete(of);
    clearTimeout(waiter.timer);
    outcome === 'ack' ? waiter.resolve(body) : waiter.reject(body);
  }

  async receive(ws, text) {
    if (ws !== this.ws) return;
    this.lastHeard = performance.now();
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const body = message.body || {};
    switch (message.type) {
      case 'challenge':
        return this.login(ws, body.nonce);
      case 'welcome':
        return this.welcomed(message);
      case 'pong':
        return;
      case 'ping':
        this.sendEnvelope({ type: 'pong', id: message.id, from: this.name, to: '@node', body: {} });
        return;
      case 'error':
        return this.failed(ws, message);
      case 'ack':
        this.settle(body.of, 'ack', body);
        if (this.pending.has(body.of)) {
          const record = this.pending.get(body.of);
          this.pending.delete(body.of);
          record.status = 'stored';
          record.ackedAt = Date.now();
          this.emit('chat-status', record);
        }
        break;
      case 'presence':
        this.emit('presence', body);
        break;
      case 'members':
      case 'history':
        // Answers to `request`: they name the request's id in `of` as an ack does.
        this.settle(body.of, 'ack', body);
        break;
      case 'room':
        this.emit('room', body);
        break;
      case 'chat':
        // Confirm to the node so it stops delivering it; the app drops repeats by (from, id).
        this.send('ack', '@node', { of: message.id, sender: message.from });
        this.emit('chat', message);
        break;
      default:
        break;
    }
    this.emit('message', message);
  }

  async login(ws, nonce) {
    this.loginStarted = performance.now();
    // Signed for the node as dialled (docs/protocol.md "Login"): a node that relays another
    // node's challenge cannot use this login there.
    const node = loginAuthority(this.url);
    const sig = await this.identity.sign(`meshnode.v1 login\n${nonce}\n${this.name}\n${node}`);
    if (ws !== this.ws) return;
    this.sendEnvelope({ type: 'login', id: newId('l'), from: '', to: '@node', body: { name: this.name, key: this.identity.publicKey, node, sig } });
  }

  welcomed(message) {
    const body = message.body || {};
    this.loggedIn = true;
    this.failedInRow = 0;
    this.loginMs = Math.round(performance.now() - this.attemptStarted);
    this.heartbeat = Number(body.heartbeat) || 15;
    this.iceServers = Array.isArray(body.iceServers) ? body.iceServers : [];
    this.learnMembers(body.members);
    this.lastHeard = performance.now();
    this.stopTimers();
    // Ping every half interval; a node silent for two intervals is gone: close and reconnect.
    this.pingTimer = setInterval(() => {
      if (performance.now() - this.lastHeard > 2000 * this.heartbeat) {
        if (this.ws) this.ws.close();
        return;
      }
      this.send('ping', '@node');
    }, (this.heartbeat * 1000) / 2);
    this.onlineSince = Date.now();
    this.setState('online');
    this.emit('welcome', body);
    // Session resume: subscriptions, then every chat message the node has not acknowledged.
    if (this.subscriptions.size) this.send('subscribe', '@node', { names: [...this.subscriptions] });
    for (const record of this.pending.values()) {
      this.sendEnvelope({ type: 'chat', id: record.id, from: this.name, to: record.to, body: { text: record.text } });
    }
  }

  /**
   * A member of a cluster names every member's URL in its welcome (docs/cluster.md "Clients"):
   * they join the URLs tried on failover, after those the user gave. Only ws: and wss: URLs (wss:
   * only, on a page served over https), at most MAX_NODE_URLS in all.
   */
  learnMembers(members) {
    if (!Array.isArray(members)) return;
    for (const url of members) {
      if (this.urls.length >= MAX_NODE_URLS) break;
      if (typeof url !== 'string' || this.urls.includes(url)) continue;
      let parsed;
      try {
        parsed = new URL(url);
      } catch {
        continue;
      }
      const secureOnly = globalThis.location?.protocol === 'https:';
      if (parsed.protocol === 'wss:' || (parsed.protocol === 'ws:' && !secureOnly)) this.urls.push(url);
    }
  }

  failed(ws, message) {
    const body = message.body || {};
    this.settle(body.of, 'error', body);
    if (body.of && this.pending.has(body.of)) {
      const record = this.pending.get(body.of);
      // A permanent refusal: resending cannot help. The node could not take it *now* after
      // `internal`, `rate-limited` and `store-busy`: it stays pending and is resent (same id)
      // with the next session's resume.
      if (!['internal', 'rate-limited', 'store-busy'].includes(body.code)) {
        this.pending.delete(body.of);
        record.status = 'failed';
        record.error = `${body.code}: ${body.reason}`;
        this.emit('chat-status', record);
      }
    }
    if (body.code === 'replaced') {
      this.setState('replaced', 'this name logged in somewhere else');
    } else if (body.code === 'revoked') {
      // The owner removed this device: logging in again cannot work (docs/protocol.md "Devices").
      this.setState('refused', `revoked: ${body.reason}`);
      ws.close(1000, 'revoked');
    } else if (!this.loggedIn && ['bad-signature', 'name-taken', 'bad-field'].includes(body.code)) {
      this.setState('refused', `${body.code}: ${body.reason}`);
      ws.close(1000, 'login refused');
    }
    this.emit('error', body);
  }

  subscribe(names) {
    const fresh = names.filter((n) => !this.subscriptions.has(n));
    for (const n of fresh) this.subscriptions.add(n);
    if (fresh.length && this.loggedIn) this.send('subscribe', '@node', { names: fresh });
  }

  /** Sends a chat message; kept and resent (same id) until the node acknowledges it. */
  chat(to, text) {
    const record = { id: newId('c'), from: this.name, to, text, status: 'sending', sentAt: Date.now() };
    this.pending.set(record.id, record);
    if (this.loggedIn) this.sendEnvelope({ type: 'chat', id: record.id, from: this.name, to, body: { text } });
    this.emit('chat-status', record);
    return record;
  }
}
