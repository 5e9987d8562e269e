// One call (docs/protocol.md "Call setup"): signed call-setup bodies, the caller's offer, the
// callee's answer, trickle ICE both ways, local media, remote tracks and statistics.

import { verifySignature } from './identity.js';
import { quality, summarize } from './stats.js';

export const SETUP_TYPES = ['call', 'accept', 'reject', 'cancel', 'busy', 'hangup', 'sdp', 'candidate', 'timeout'];
const SIGNING_CONTEXT = 'meshnode.v1 call-setup\n';

/** The name part of an address (`bob@host:port` → `bob`). */
export function bareName(address) {
  const at = (address || '').indexOf('@');
  return at > 0 ? address.slice(0, at) : address || '';
}

/** Pinned peer keys (trust on first use), kept in localStorage by qualified address. */
export class KeyPins {
  constructor(nodeHost, storage = globalThis.localStorage) {
    this.nodeHost = nodeHost;
    this.storage = storage;
  }

  qualify(address) {
    return address.includes('@') ? address : `${address}@${this.nodeHost}`;
  }

  all() {
    try {
      return JSON.parse(this.storage.getItem('meshnode.pins') || '{}');
    } catch {
      return {};
    }
  }

  get(address) {
    return this.all()[this.qualify(address)] || null;
  }

  /** Pins `key` for `address` if none is pinned; returns false when another key is pinned. */
  check(address, key) {
    const pins = this.all();
    const name = this.qualify(address);
    if (!pins[name]) {
      pins[name] = key;
      this.storage.setItem('meshnode.pins', JSON.stringify(pins));
      return true;
    }
    return pins[name] === key;
  }
}

/** A signed call-setup body: `payload` is the JSON text that was signed. */
export async function signBody(identity, fields) {
  const payload = JSON.stringify(fields);
  const sig = await identity.sign(SIGNING_CONTEXT + payload);
  return { payload, key: identity.publicKey, sig };
}

export class CallSetupError extends Error {
  constructor(code, reason) {
    super(reason);
    this.code = code;
  }
}

/**
 * Seconds a call-setup `ts` may differ from this clock, either way (docs/protocol.md "Call
 * setup"): it covers clock skew and relay time, and equals the longest ring time, so a replayed
 * `call` cannot ring after it.
 */
export const FRESHNESS_WINDOW = 120;

/**
 * Call-setup messages taken within the freshness window, by a digest of (key, payload), so that
 * a replay is refused. Bounded: entries expire with their `ts`; when full of live entries the
 * oldest eighth is dropped and the newest `ts` dropped becomes a floor below which messages are
 * refused (a flood makes the check stricter, never weaker). The same rule as the CLI's.
 */
export class ReplayCache {
  constructor(capacity = 4096, window = FRESHNESS_WINDOW) {
    this.capacity = capacity;
    this.window = window;
    this.seen = new Map(); // digest → ts
    this.floor = -Infinity;
  }

  /** Throws CallSetupError `stale` when `ts` is outside the window; remembers nothing. */
  checkTime(payload, now = Date.now() / 1000) {
    const ts = payload.ts;
    if (typeof ts !== 'number' || !Number.isFinite(ts) || Math.abs(now - ts) > this.window) {
      throw new CallSetupError('stale', `the ${payload.type} was signed at ts ${ts}, not within ±${this.window} s of this clock`);
    }
  }

  /** Throws CallSetupError `stale` or `replayed`, or remembers the message. */
  async admit(body, payload, now = Date.now() / 1000) {
    this.checkTime(payload, now);
    const ts = payload.ts;
    const bytes = new TextEncoder().encode(`${body.key}\n${body.payload}`);
    const digest = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)).slice(0, 16)));
    if (this.seen.has(digest) || ts <= this.floor) {
      throw new CallSetupError('replayed', `the ${payload.type} of call ${String(payload.call).slice(0, 64)} was received before (a replay)`);
    }
    this.seen.set(digest, ts);
    if (this.seen.size > this.capacity) this.makeRoom(now);
  }

  makeRoom(now) {
    for (const [digest, ts] of this.seen) if (now - ts > this.window) this.seen.delete(digest);
    const keep = this.capacity - Math.floor(this.capacity / 8);
    if (this.seen.size <= keep) return;
    const oldest = [...this.seen].sort((a, b) => a[1] - b[1]).slice(0, this.seen.size - keep);
    for (const [digest, ts] of oldest) {
      this.seen.delete(digest);
      this.floor = Math.max(this.floor, ts);
    }
  }
}

/**
 * A received call-setup message after every check: `{payload, key}` with the key it verified
 * against (the call binds to it), or a CallSetupError. Checks, in order: the envelope matches
 * what was signed, the signature, freshness (`replays`, a ReplayCache), the pin (trust on first
 * use), then replay — so that neither junk nor an old message can pin a key.
 */
export async function openBody(message, pins, replays, now = Date.now() / 1000) {
  const body = message.body || {};
  if (typeof body.payload !== 'string' || typeof body.key !== 'string' || typeof body.sig !== 'string') {
    throw new CallSetupError('bad-field', `${message.type} from ${message.from} is not signed`);
  }
  let payload;
  try {
    payload = JSON.parse(body.payload);
  } catch {
    throw new CallSetupError('bad-field', 'the signed payload is not JSON');
  }
  // The envelope must say what was signed: no replay as another type or to another peer.
  if (payload.type !== message.type || bareName(payload.from) !== bareName(message.from) || bareName(payload.to) !== bareName(message.to)) {
    throw new CallSetupError('bad-signature', 'the signed payload does not match the envelope');
  }
  if (!(await verifySignature(body.key, body.sig, SIGNING_CONTEXT + body.payload))) {
    throw new CallSetupError('bad-signature', `the signature of ${message.from} does not verify`);
  }
  replays.checkTime(payload, now);
  // A linked device signs with its own key; its node adds the name's owner key and the owner's
  // endorsement of the device key. The owner key is what is pinned (docs/protocol.md "Devices").
  let pinned = body.key;
  if (typeof body.owner === 'string' && body.owner !== body.key) {
    const text = `meshnode.v1 device\n${bareName(message.from)}\n${body.key}`;
    if (typeof body.endorsement !== 'string' || !(await verifySignature(body.owner, body.endorsement, text))) {
      throw new CallSetupError('bad-signature', `${message.from} signed with a device key its owner key did not endorse`);
    }
    pinned = body.owner;
  }
  if (!pins.check(message.from, pinned)) {
    throw new CallSetupError('key-changed', `${message.from} signed with a key other than the one pinned for it (localStorage meshnode.pins, entry ${pins.qualify(message.from)})`);
  }
  await replays.admit(body, payload, now);
  return { payload, key: body.key };
}

/** Local media for a call of `kind` (`audio`, `video`, `desktop`) in the role given. */
export async function localMedia(kind, role) {
  if (kind === 'desktop') {
    // The caller of a desktop call shares its screen; the callee only watches.
    if (role !== 'caller') return new MediaStream();
    return navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
  }
  return navigator.mediaDevices.getUserMedia({ audio: true, video: kind === 'video' });
}

/**
 * Events: `state` ({state, code, detail, reason}), `remote-stream` (MediaStream),
 * `local-stream`, `stats` (summary).
 * States: new, ringing-out, ringing-in, connecting, connected, ended. Every change, the ringing
 * states included, fires `state`, so the page shows "Calling…" and *Cancel* at once.
 * An ended call has a `code` saying why (the page words it, messages-*.js `end.CODE`) and a
 * `detail` (the other party's reason, or an error): hangup-local, hangup-remote, cancel-local,
 * cancel-remote, reject-local, reject-remote, busy, no-answer, unavailable, no-media,
 * setup-failed, sharing-stopped. `reason` is `code` or `code: detail`, for logs and tests.
 */
export class Call extends EventTarget {
  constructor({ client, identity, pins, peer, peerKey = null, id, kind, role, relayOnly = false, stream = null, tags = null,
    sendEncodings = null, restartIce = true }) {
    super();
    // peerKey: the key the other party signs with — the caller's from its `call`, the
    // callee's from its `accept` (set in step()). stream: local media shared with other calls
    // (a room call's pairwise calls, roomcall.js), which this call uses but never stops. tags:
    // fields added to the signed `call` (`room`, `roomCall`). sendEncodings: simulcast layers
    // of the video the caller offers (a call to a forwarder, forwarded.js). restartIce: false
    // for a peer that answers only its first offer (a forwarder): a failed path ends the call
    // and its owner calls again.
    Object.assign(this, { client, identity, pins, peer, peerKey, id, kind, role, relayOnly, tags, sendEncodings, restartIceOnFailure: restartIce });
    this.sharedStream = stream;
    this.state = 'new';
    this.reason = '';
    this.code = '';
    this.detail = '';
    this.ringSent = false;
    this.pc = null;
    this.localStream = null;
    this.remoteStream = new MediaStream();
    this.queuedCandidates = [];
    this.startedAt = performance.now();
    this.times = {};
    this.lastStats = null;
    this.setupSteps = Promise.resolve();
  }

  set(state, code = '', detail = '') {
    if (this.state === 'ended') return;
    this.state = state;
    this.code = code;
    this.detail = detail;
    this.reason = detail ? `${code}: ${detail}` : code;
    this.times[state] = Math.round(performance.now() - this.startedAt);
    this.dispatchEvent(new CustomEvent('state', { detail: { state, code, detail, reason: this.reason } }));
  }

  /** Callee: the call rings here (after the page listens to its events). */
  ring() {
    if (this.state === 'new' && this.role === 'callee') this.set('ringing-in');
  }

  /** Signs and sends; sends leave in the order they were asked for (signing is asynchronous). */
  sendSigned(type, extra = {}) {
    const fields = { type, from: this.identity.name, to: this.peer, call: this.id, ts: Date.now() / 1000, ...extra };
    this.sendChain = (this.sendChain || Promise.resolve()).then(async () => {
      const body = await signBody(this.identity, fields);
      this.client.send(type, this.peer, body);
    });
    return this.sendChain;
  }

  /**
   * Caller: ringing-out at once (the page shows *Cancel*), then media, then the `call`. A
   * cancel while the browser is still asking for media ends the call before anything is sent.
   */
  async start(ring = 30) {
    this.set('ringing-out');
    const stream = this.sharedStream || await localMedia(this.kind, 'caller');
    if (this.state === 'ended') {
      for (const track of stream.getTracks()) track.stop();
      return;
    }
    this.localStream = stream;
    this.dispatchEvent(new CustomEvent('local-stream', { detail: this.localStream }));
    // A shared screen that the user stops (browser's "Stop sharing") ends the call.
    if (!this.sharedStream) for (const track of this.localStream.getTracks()) track.onended = () => this.hangup('sharing stopped', 'sharing-stopped');
    this.ringSent = true;
    await this.sendSigned('call', { kind: this.kind, ring, ...this.tags });
  }

  /** Callee: get media and accept; the caller's offer follows. */
  async accept() {
    if (this.state !== 'ringing-in') return;
    this.set('connecting');
    try {
      this.localStream = this.sharedStream || await localMedia(this.kind, 'callee');
    } catch (error) {
      await this.reject(`no media: ${error.message}`, 'no-media', error.message);
      throw error;
    }
    this.dispatchEvent(new CustomEvent('local-stream', { detail: this.localStream }));
    this.createConnection();
    await this.sendSigned('accept');
  }

  /** Callee: declines; `reason` goes to the caller, `code`/`detail` say why here. */
  async reject(reason = 'rejected', code = 'reject-local', detail = '') {
    if (this.state !== 'ringing-in') return;
    await this.sendSigned('reject', { reason });
    this.end(code, detail);
  }

  /**
   * Ends the call from this side: `cancel` while ringing out, `reject` while ringing in,
   * `hangup` after. `reason` goes to the other party; `code` (default from the state) and
   * `detail` say why here.
   */
  async hangup(reason = 'hangup', code = null, detail = '') {
    if (this.state === 'ended') return;
    if (this.state === 'ringing-in') return this.reject(reason === 'hangup' ? 'rejected' : reason, code || 'reject-local');
    const ringing = this.state === 'ringing-out' || this.state === 'new';
    if (ringing && !this.ringSent) return this.end(code || 'cancel-local', detail);
    // End here first, so the page shows it at once; the message leaves right after.
    const sent = this.sendSigned(ringing ? 'cancel' : 'hangup', { reason });
    this.end(code || (ringing ? 'cancel-local' : 'hangup-local'), detail);
    await sent;
  }

  end(code, detail = '') {
    if (this.state === 'ended') return;
    clearInterval(this.statsTimer);
    if (this.pc) this.pc.close();
    if (this.localStream && !this.sharedStream) for (const t of this.localStream.getTracks()) t.stop();
    this.set('ended', code, detail);
  }

  createConnection() {
    if (this.pc) return this.pc;
    const pc = new RTCPeerConnection({
      iceServers: this.client.iceServers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require',
      // Relay only: every path goes through the node's TURN (tests, or to hide one's addresses).
      iceTransportPolicy: this.relayOnly ? 'relay' : 'all',
    });
    this.pc = pc;
    pc.onicecandidate = (event) => {
      if (!event.candidate || !event.candidate.candidate) return;
      const { candidate, sdpMid, sdpMLineIndex } = event.candidate;
      this.sendSigned('candidate', { candidate: { candidate, sdpMid, sdpMLineIndex } });
    };
    pc.ontrack = (event) => {
      if (!this.remoteStream.getTracks().includes(event.track)) this.remoteStream.addTrack(event.track);
      // With its msid streams: a forwarder's sections name the participant who sends each.
      this.dispatchEvent(new CustomEvent('track', { detail: { track: event.track, streams: event.streams } }));
      this.dispatchEvent(new CustomEvent('remote-stream', { detail: this.remoteStream }));
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'connected' && this.state !== 'connected') this.set('connected');
      if (pc.connectionState === 'failed' && this.role === 'caller') {
        if (this.restartIceOnFailure) this.restartIce();
        else this.hangup('connection failed', 'setup-failed', 'the connection failed');
      }
    };
    this.statsTimer = setInterval(() => this.collectStats(), 1000);
    return pc;
  }

  /** The caller renegotiates with fresh ICE credentials when the path fails. */
  async restartIce() {
    if (this.state === 'ended') return;
    const offer = await this.pc.createOffer({ iceRestart: true });
    await this.pc.setLocalDescription(offer);
    await this.sendSigned('sdp', { sdpType: 'offer', sdp: offer.sdp });
  }

  async collectStats() {
    if (!this.pc || this.state === 'ended') return;
    const report = await this.pc.getStats();
    this.lastStats = summarize(report, this.lastStats);
    this.lastStats.quality = quality(this.lastStats, { receives: !(this.kind === 'desktop' && this.role === 'caller') });
    if (!this.times.firstFrame && this.lastStats.video.framesDecoded > 0) {
      this.times.firstFrame = Math.round(performance.now() - this.startedAt);
    }
    this.dispatchEvent(new CustomEvent('stats', { detail: this.lastStats }));
  }

  /** Marks the first remote video frame on screen (the page sees it before the stats do). */
  firstFrameShown() {
    if (!this.times.firstFrameShown) this.times.firstFrameShown = Math.round(performance.now() - this.startedAt);
  }

  /**
   * Whether a verified message comes from this call's other party: the same full address
   * (`bob@A` is not `bob@C` nor a local `bob`) and the key the call is bound to. Before the
   * callee accepted, only its answer (accept, reject, busy) may come, from its address.
   */
  isFromOtherParty(from, key, type) {
    if (this.pins.qualify(from) !== this.pins.qualify(this.peer) || typeof key !== 'string') return false;
    if (this.peerKey) return key === this.peerKey;
    return this.role === 'caller' && ['accept', 'reject', 'busy'].includes(type);
  }

  /**
   * Takes a verified message of this call if it comes from the other party (its `accept` binds
   * the callee's key); returns false, having done nothing, otherwise.
   */
  receive(type, payload, from, key) {
    if (!this.isFromOtherParty(from, key, type)) return false;
    if (type === 'accept' && !this.peerKey) this.peerKey = key;
    this.handle(type, payload);
    return true;
  }

  /** A verified call-setup message for this call. Steps run one at a time, in arrival order. */
  handle(type, payload) {
    this.setupSteps = this.setupSteps.then(() => this.step(type, payload)).catch((error) => {
      console.error('call setup', error);
      this.hangup('setup failed', 'setup-failed', String(error.message || error));
    });
    return this.setupSteps;
  }

  async step(type, payload) {
    if (this.state === 'ended') return;
    switch (type) {
      case 'accept':
        if (this.role !== 'caller' || this.state !== 'ringing-out') return;
        this.set('connecting');
        return this.offer();
      case 'reject':
        return this.end('reject-remote', this.theirReason(payload, 'rejected'));
      case 'busy':
        return this.end('busy');
      case 'cancel':
        return this.end('cancel-remote');
      case 'hangup':
        return this.end('hangup-remote', this.theirReason(payload, 'hangup'));
      case 'timeout':
        // The node's ring timer: a call that is past ringing is not ended by it.
        if (this.state !== 'ringing-out' && this.state !== 'ringing-in' && this.state !== 'connecting') return;
        return this.end('no-answer');
      case 'sdp':
        return this.description(payload);
      case 'candidate':
        return this.candidate(payload.candidate);
      default:
    }
  }

  /** The other party's reason, unless it is the default word; bounded, it is their text. */
  theirReason(payload, defaultWord) {
    const reason = typeof payload.reason === 'string' ? payload.reason.slice(0, 200) : '';
    return reason === defaultWord ? '' : reason;
  }

  async offer() {
    const pc = this.createConnection();
    for (const track of this.localStream.getTracks()) {
      // Simulcast (RFC 8853): the layers must be given when the transceiver is made.
      if (track.kind === 'video' && this.sendEncodings) {
        pc.addTransceiver(track, { direction: 'sendrecv', streams: [this.localStream], sendEncodings: this.sendEncodings });
      } else {
        pc.addTrack(track, this.localStream);
      }
    }
    // A callee that sends nothing back still needs an m-line to receive on.
    const kinds = new Set(this.localStream.getTracks().map((t) => t.kind));
    const wanted = this.kind === 'audio' ? ['audio'] : this.kind === 'video' ? ['audio', 'video'] : ['video'];
    for (const kind of wanted) if (!kinds.has(kind)) pc.addTransceiver(kind, { direction: 'recvonly' });
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await this.sendSigned('sdp', { sdpType: 'offer', sdp: offer.sdp });
  }

  async description(payload) {
    if (payload.sdpType !== 'offer' && payload.sdpType !== 'answer') throw new Error(`sdpType ${payload.sdpType}`);
    const pc = this.createConnection();
    const first = !pc.currentLocalDescription;
    await pc.setRemoteDescription({ type: payload.sdpType, sdp: payload.sdp });
    if (payload.sdpType === 'answer' && this.answerWaiter) {
      this.answerWaiter.resolve();
      this.answerWaiter = null;
    }
    if (payload.sdpType === 'offer') {
      if (first) {
        // addTrack reuses the transceivers the offer made, so the answer says sendrecv.
        const senders = pc.getSenders().map((s) => s.track);
        for (const track of this.localStream?.getTracks() || []) if (!senders.includes(track)) pc.addTrack(track, this.localStream);
      } else {
        // A later offer: an ICE restart, or the other side adding a screen share to an audio
        // call (addVideo). What this side sends stays as it is (mute, camera off and its own
        // share are track states, not SDP); it is willing to receive whatever is offered.
        for (const t of pc.getTransceivers()) {
          if (t.stopped) continue;
          if (t.direction === 'sendonly') t.direction = 'sendrecv';
          else if (t.direction === 'inactive') t.direction = 'recvonly';
        }
      }
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      await this.sendSigned('sdp', { sdpType: 'answer', sdp: answer.sdp });
    }
    for (const candidate of this.queuedCandidates.splice(0)) await pc.addIceCandidate(candidate);
  }

  /**
   * Starts sending `track` (a screen share) in a call that sends no video yet — an audio call —
   * with a new offer (JSEP, RFC 8829 §5.2.2 subsequent offers): the video transceiver the call
   * has (receiving only) starts sending too, or a new one is added. Resolves once the answer is
   * applied. When the peer does not answer (a client that takes only one offer per call), after
   * `timeoutMs` the offer is rolled back, the call goes on as before, and this rejects with a
   * CallSetupError `not-answered`.
   */
  async addVideo(track, timeoutMs = 5000) {
    const pc = this.pc;
    if (!pc || pc.signalingState !== 'stable') throw new CallSetupError('busy', 'a negotiation is already under way');
    let transceiver = pc.getTransceivers().find((t) => !t.stopped && t.receiver.track?.kind === 'video');
    if (transceiver) {
      transceiver.direction = transceiver.direction === 'recvonly' || transceiver.direction === 'sendrecv' ? 'sendrecv' : 'sendonly';
      await transceiver.sender.replaceTrack(track);
    } else {
      transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [this.localStream] });
    }
    const answered = new Promise((resolve, reject) => (this.answerWaiter = { resolve, reject }));
    const timer = setTimeout(() => this.answerWaiter?.reject(new CallSetupError('not-answered', `${this.peer} did not answer the offer that adds the screen`)), timeoutMs);
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      await this.sendSigned('sdp', { sdpType: 'offer', sdp: offer.sdp });
      await answered;
      // An answer may also refuse the new video (port 0, RFC 3264 §6): then nothing is sent.
      if (transceiver.stopped || !['sendonly', 'sendrecv'].includes(transceiver.currentDirection)) {
        await transceiver.sender.replaceTrack(null).catch(() => {});
        throw new CallSetupError('not-answered', `${this.peer} refused the video that carries the screen`);
      }
      return transceiver;
    } catch (error) {
      this.answerWaiter = null;
      if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
      await transceiver.sender.replaceTrack(null).catch(() => {});
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async candidate(candidate) {
    if (!candidate || typeof candidate.candidate !== 'string') return;
    if (!this.pc || !this.pc.remoteDescription) {
      this.queuedCandidates.push(candidate);
      return;
    }
    await this.pc.addIceCandidate(candidate);
  }

  /** JSON-friendly view for the page and tests. */
  view() {
    return {
      id: this.id, peer: this.peer, kind: this.kind, role: this.role, state: this.state, reason: this.reason, code: this.code, detail: this.detail,
      times: this.times, connectionState: this.pc?.connectionState || null,
      localTracks: this.localStream ? this.localStream.getTracks().map((t) => t.kind) : [],
      remoteTracks: this.remoteStream.getTracks().map((t) => t.kind),
    };
  }
}
