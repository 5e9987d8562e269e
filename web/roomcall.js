// Room calls on the page, peer-to-peer mode (docs/rooms.md, docs/protocol.md "Room calls"): a
// member starts the call of a room or joins the running one with a signed `room-call`; the
// room's node keeps who is in and tells every member (`room-call-state`), which rings members
// not in it. Each pair of participants runs its own one-to-one call (call.js), set up exactly
// as the CLI does it: the later joiner calls, its signed `call` tagged with `room` and
// `roomCall`; a tagged call from a participant this page verified is taken without ringing.
// One local camera and microphone feed every pairwise call.
//
// Above the room's limit the node moves the call to its forwarder (forwarded.js): this page
// then calls the forwarder once, keeps its pairwise calls until media of another participant
// comes through it (10 s at the latest), and hangs them up; a page that joins a forwarded call
// calls only the forwarder.

import { Call, bareName, localMedia } from './call.js';
import { verifySignature } from './identity.js';
import { newId } from './signaling.js';
import { ForwardedLink, MAX_FORWARDER_TRIES, MOVE_DEADLINE, RESTART_AFTER_DISCONNECT, RESTART_DEADLINE, nodePinAddress, pictureSize, simulcastLayersFor, verifyAssignment } from './forwarded.js';
import { Speakers } from './speaking.js';

const SIGNING_CONTEXT = 'meshnode.v1 room-call\n';
/** Room-call states kept at most (one per room; the page lists at most 100 rooms). */
export const MAX_KNOWN = 100;
/**
 * Pairwise calls at most, whatever a node's state lists: a peer-to-peer call has at most
 * `--room-call-mesh-limit` (4) participants; this bounds what a node that lies can make the
 * page open.
 */
export const MAX_PAIRS = 8;
/** Seconds a ring lasts when the node names none (its default ring). */
const DEFAULT_RING = 30;
/**
 * Whether the page sends simulcast (three layers, forwarded.js) to the forwarder, which takes a
 * participant's `a=simulcast:send` offer in Chromium's form (RFC 8853 §5.2) and picks each
 * receiver's layer. Pairwise calls send one layer: their one receiver gets the best that fits.
 */
export const FORWARDER_SIMULCAST = true;

/** A signed `room-call` body: `payload` is the JSON text that was signed. */
export async function signRoomCall(identity, fields) {
  const payload = JSON.stringify(fields);
  const sig = await identity.sign(SIGNING_CONTEXT + payload);
  return { payload, key: identity.publicKey, sig };
}

/**
 * The participants of a `room-call-state` that this page can check: each one's own signed
 * `start` or `join` for this call and room, its signature, a device key's endorsement by its
 * owner key, and the owner key against the pin for the name (pinned on first use). The node can
 * leave a participant out, never add one. Returns `{participants: [{name, key, screen}], refused}`.
 */
export async function verifyParticipants(body, pins) {
  const participants = [];
  let refused = 0;
  const list = Array.isArray(body.participants) ? body.participants.slice(0, 64) : [];
  // A signer names itself and the room relative to its own node (`alice`, `#ops@east` at west;
  // `bob`, `#ops` at east): the node gives each participant's address as this page writes it,
  // the signed name must be that address's name and the signed room this room's name, and the
  // key is pinned by the address (docs/rooms.md "Room calls in a room of another node").
  const addresses = Array.isArray(body.addresses) && body.addresses.length === (body.participants || []).length ? body.addresses : null;
  for (const [index, signed] of list.entries()) {
    let payload;
    try {
      payload = JSON.parse(signed.payload);
    } catch {
      refused += 1;
      continue;
    }
    const address = addresses && typeof addresses[index] === 'string' ? addresses[index] : payload?.from;
    const ok = typeof signed.key === 'string' && typeof signed.sig === 'string' && payload && typeof payload.from === 'string'
      && typeof payload.room === 'string' && bareName(payload.from) === bareName(address)
      && payload.call === body.call && bareName(payload.room) === bareName(body.room) && (payload.action === 'start' || payload.action === 'join')
      && await verifySignature(signed.key, signed.sig, SIGNING_CONTEXT + signed.payload);
    if (!ok) {
      refused += 1;
      continue;
    }
    let owner = signed.key;
    if (typeof signed.owner === 'string' && signed.owner !== signed.key) {
      const text = `meshnode.v1 device\n${bareName(payload.from)}\n${signed.key}`;
      if (typeof signed.endorsement !== 'string' || !(await verifySignature(signed.owner, signed.endorsement, text))) {
        refused += 1;
        continue;
      }
      owner = signed.owner;
    }
    if (!pins.check(address, owner) || participants.some((p) => p.name === address)) {
      refused += 1;
      continue;
    }
    participants.push({ name: address, key: signed.key, screen: payload.screen === true });
  }
  return { participants, refused };
}

/**
 * The room calls this page knows of (one per room) and the one it takes part in (`own`).
 * `ui` gives the page's side: newPair(options) → a Call wired for the page's log, render(),
 * ring(state) / stopRing(), log(event, detail), busy() (a one-to-one call runs).
 * Events: `change` after every state or pairwise-call change (the page redraws on it).
 */
export class RoomCalls extends EventTarget {
  constructor(app, ui) {
    super();
    this.app = app;
    this.ui = ui;
    this.known = new Map(); // room → {room, call, kind, participants, limit, refused}
    this.own = null; // {room, call, kind, stream, camera, screen, pairs: Map name → Call, muted}
    this.ringing = null; // the state that rings here, until joined, declined or its ring is over
  }

  /** Whether this page takes part in a room call (then a one-to-one call is answered busy). */
  get active() {
    return !!this.own;
  }

  /** Forgets everything (logout); the pairwise calls end. */
  reset() {
    if (this.own) this.endOwn();
    this.known.clear();
    this.stopRinging();
  }

  emit() {
    this.dispatchEvent(new Event('change'));
    this.ui.render();
  }

  /** A `room-call-state` from the node. */
  async stateReceived(message) {
    const body = message.body || {};
    if (message.from !== '@node' || typeof body.room !== 'string' || typeof body.call !== 'string') return;
    const ours = this.own?.room === body.room && this.own.call === body.call;
    if (!this.app.rooms.has(body.room) && !ours) return;
    // Out of it: the node took this name out (it left the room, or on another device).
    if (ours && body.event === 'left' && body.member === this.app.identity?.name) {
      this.endOwn();
      if (!this.app.rooms.has(body.room)) return this.emit();
    }
    if (body.event === 'ended') {
      this.known.delete(body.room);
      if (this.ringing?.room === body.room) this.stopRinging();
      if (this.own?.room === body.room && this.own.call === body.call) this.endOwn();
      this.ui.log('room-call', { room: body.room, call: body.call, event: 'ended' });
      return this.emit();
    }
    const { participants, refused } = await verifyParticipants(body, this.app.pins);
    if (!this.known.has(body.room) && this.known.size >= MAX_KNOWN) return;
    const state = { room: body.room, call: body.call, kind: ['audio', 'video', 'desktop'].includes(body.kind) ? body.kind : 'video',
      participants, limit: Number(body.limit) || 4, refused, event: body.event, member: body.member, forwarder: null, forwarderRefusal: null,
      body: { ...body, to: message.to } };
    await this.checkForwarder(state, body.forwarder, this.known.get(body.room));
    this.known.set(body.room, state);
    this.ui.log('room-call', { room: state.room, call: state.call, event: body.event, member: body.member,
      participants: participants.map((p) => p.name), refused, forwarder: state.forwarder?.address ?? null });
    const me = this.app.identity?.name;
    const inIt = participants.some((p) => p.name === me);
    // Rung: a member not in the call (and in no other call) hears it for `ring` seconds.
    if (body.event === 'started' && !inIt && !this.own && !this.ui.busy()) this.ring(state, Number(body.ring) || DEFAULT_RING);
    // Joined on another device of this name: this one stops ringing.
    if (this.ringing?.room === state.room && inIt && !this.own) this.stopRinging();
    if (this.own?.room === state.room && this.own.call === state.call) await this.follow(state);
    this.emit();
  }

  /**
   * The forwarder assignment of a state (docs/protocol.md *Forwarded mode*, item 2), checked
   * under the key pinned for this page's node. A refused one is logged and shown with its
   * reason, and the page keeps its pairwise calls. One assignment per call is kept, the newest
   * `ts`: a state without one, or with an older one, keeps what `previous` had (a forwarded call
   * does not move back).
   */
  async checkForwarder(state, signed, previous) {
    const kept = previous?.call === state.call ? previous.forwarder : null;
    state.forwarder = kept;
    if (!signed) return;
    const pins = this.app.pins;
    try {
      const assignment = await verifyAssignment(signed, { room: state.room, call: state.call, nodeKey: pins?.get(nodePinAddress(pins)) });
      if (!kept || assignment.ts >= kept.ts) state.forwarder = assignment;
    } catch (error) {
      state.forwarderRefusal = { code: error.code || 'bad-field', reason: String(error.message || error) };
      this.ui.log('forwarder-refused', { room: state.room, call: state.call, ...state.forwarderRefusal });
    }
  }

  ring(state, seconds) {
    this.stopRinging();
    this.ringing = { room: state.room, call: state.call, kind: state.kind, from: state.member };
    this.ringTimer = setTimeout(() => this.stopRinging(), seconds * 1000);
    this.ui.ring(this.ringing);
  }

  stopRinging() {
    clearTimeout(this.ringTimer);
    if (!this.ringing) return;
    this.ringing = null;
    this.ui.stopRing();
  }

  /** The pairwise calls after a change of this page's own room call. */
  async follow(state) {
    const own = this.own;
    // Who left hangs up with us; the node's list no longer has them.
    for (const [name, pair] of own.pairs) {
      if (!state.participants.some((p) => p.name === name)) {
        own.pairs.delete(name);
        pair.hangup('left the room call').catch(() => {});
      }
    }
    const me = this.app.identity.name;
    const index = state.participants.findIndex((p) => p.name === me);
    if (index < 0) return;
    // Forwarded: one call to the forwarder and no new pairwise call.
    if (state.forwarder) return this.forwardTo(state);
    // The later joiner calls: every participant before this one with no pair yet. A page that
    // joins again (after a reload) keeps its place in the list, but the others still think
    // they have a pair with it: once, it calls everyone, and they replace their stale pair.
    const callees = own.callAll ? state.participants.filter((p) => p.name !== me) : state.participants.slice(0, index);
    own.callAll = false;
    for (const earlier of callees) {
      if (own.pairs.has(earlier.name) || own.pairs.size >= MAX_PAIRS) continue;
      const pair = this.ui.newPair({ peer: earlier.name, id: newId('call'), kind: own.kind, role: 'caller', stream: own.stream,
        tags: { room: own.room, roomCall: own.call } });
      this.adopt(earlier.name, pair);
      pair.start().catch((error) => this.ui.log('room-call', { error: String(error), peer: earlier.name }));
    }
  }

  /**
   * Calls the forwarder of `state` (tagged with the room call, bound to the assignment's key
   * before anything comes back), unless this page's call already goes to it. A changed
   * assignment (another forwarder, or the same name with another key: failover) hangs up the
   * old call and calls the new one. The pairwise calls end once another participant's media is
   * decoded through the forwarder, or MOVE_DEADLINE seconds after the call started.
   */
  forwardTo(state) {
    const own = this.own;
    const { address, key } = state.forwarder;
    const current = own.link;
    if (current && current.address === address && current.key === key && current.call.state !== 'ended') return;
    if (current) {
      own.link = null;
      current.call.hangup('the room call moved to another forwarder').catch(() => {});
    }
    const target = `${address} ${key}`;
    if (own.forwarderTarget !== target) {
      own.forwarderTarget = target;
      own.forwarderTries = 0;
    }
    if (own.forwarderTries >= MAX_FORWARDER_TRIES) return;
    own.forwarderTries += 1;
    const call = this.ui.newPair({
      peer: address, peerKey: key, id: newId('call'), kind: own.kind, role: 'caller', stream: own.stream,
      // A path that breaks is restarted (the forwarder answers ICE restarts and keeps the DTLS
      // session, docs/rooms.md "Failure"); only when that does not bring it back within
      // RESTART_DEADLINE does the call end and a new one replace it (below).
      tags: { room: own.room, roomCall: own.call }, restartIce: true, restartOnDisconnect: RESTART_AFTER_DISCONNECT * 1000,
      restartDeadline: RESTART_DEADLINE * 1000,
      sendEncodings: FORWARDER_SIMULCAST && own.kind === 'video' ? simulcastLayersFor(pictureSize(own.stream)) : null,
    });
    const link = new ForwardedLink(call, state.forwarder);
    own.link = link;
    own.movedAt ??= performance.now();
    link.addEventListener('change', () => this.emit());
    link.addEventListener('decoding', () => {
      if (this.own?.link !== link) return;
      own.forwarderTries = 0;
      this.endPairs('decoding');
    });
    clearTimeout(own.moveTimer);
    own.moveTimer = setTimeout(() => this.own?.link === link && this.endPairs('deadline'), MOVE_DEADLINE * 1000);
    call.addEventListener('state', ({ detail }) => {
      this.ui.log('forwarder-call', { call: call.id, state: detail.state, reason: detail.reason || undefined });
      if (detail.state !== 'ended' || this.own?.link !== link) return this.emit();
      // The forwarder hung up or the path failed: call it again (a new call replaces the old
      // one there), a few times; the node's next state may also name another forwarder.
      this.own.link = null;
      this.ui.log('room-call', { forwarder: address, ended: detail.reason });
      this.emit();
      const again = this.known.get(own.room);
      if (again?.forwarder && this.own === own) setTimeout(() => this.own === own && !own.link && this.follow(this.known.get(own.room)), 1000);
    });
    this.ui.log('room-call', { room: own.room, call: own.call, forwarder: address, calling: call.id });
    call.start().catch((error) => this.ui.log('room-call', { error: String(error), peer: address }));
    this.emit();
  }

  /** Hangs up every pairwise call: the forwarder carries the room call now. */
  endPairs(why) {
    const own = this.own;
    if (!own) return;
    clearTimeout(own.moveTimer);
    if (own.pairs.size && own.moveMs === undefined && own.movedAt !== undefined) {
      own.moveMs = Math.round(performance.now() - own.movedAt);
      this.ui.log('room-call', { moved: why, ms: own.moveMs, pairs: [...own.pairs.keys()] });
    }
    for (const pair of own.pairs.values()) pair.hangup('the room call moved to its forwarder').catch(() => {});
    own.pairs.clear();
    this.emit();
  }

  /** Whether this page's own room call is forwarded (a verified assignment). */
  get forwarded() {
    const own = this.own;
    return !!own && !!this.known.get(own.room)?.forwarder && this.known.get(own.room).call === own.call;
  }

  /** The picture and sound of `name` in this page's call: its pairwise call's, else what the forwarder sends of it. */
  streamOf(name) {
    const own = this.own;
    const pair = own?.pairs.get(name);
    const forwarded = own?.link?.stream(name);
    // During the move both may exist: the pair's until the forwarder's media comes.
    if (pair && (!forwarded || !own.link.decoding)) return pair.remoteStream;
    return forwarded ?? pair?.remoteStream ?? null;
  }

  /** Whether `name`'s media is connected: its pair is, or the forwarder sends its streams over a connected call. */
  connectedTo(name) {
    const own = this.own;
    if (own?.pairs.get(name)?.state === 'connected') return true;
    return own?.link?.call.state === 'connected' && !!own.link.stream(name);
  }

  adopt(name, pair) {
    this.own.pairs.set(name, pair);
    pair.addEventListener('state', ({ detail }) => {
      // A pair that ended on its own (the other side hung up, or setup failed) is let go; the
      // node's state says whether they are still in (they may call again after a reconnect).
      if (detail.state === 'ended' && this.own?.pairs.get(name) === pair) this.own.pairs.delete(name);
      this.emit();
    });
    pair.addEventListener('remote-stream', () => this.emit());
  }

  /**
   * A verified `call` (from, key, payload): taken without ringing when it is tagged with this
   * page's room call and comes from a participant (name and key as verified) — also one with
   * which a pair exists, which it replaces (below). Returns whether it was taken.
   */
  incoming(from, key, payload) {
    const own = this.own;
    // The caller wrote the room relative to its own node: its name must match.
    if (!own || typeof payload.room !== 'string' || bareName(payload.room) !== bareName(own.room) || payload.roomCall !== own.call) return false;
    const state = this.known.get(own.room);
    if (!state || state.call !== own.call || !state.participants.some((p) => p.name === from && p.key === key)) return false;
    // A forwarded call has no pairwise calls: a participant that calls anyway is answered busy.
    if (state.forwarder) return false;
    const stale = own.pairs.get(from);
    if (stale) {
      // The same participant (name and key) calls again: it reloaded its page or restarted,
      // and its side of our call is gone. The new call replaces ours at once instead of
      // waiting for ICE to notice (about 30 s of silence). Our own call to it that is not up
      // yet wins (two calls crossed: this page calls everyone after its own reload); the
      // other one is answered busy.
      if (stale.id === payload.call || (stale.role === 'caller' && stale.state !== 'connected')) return false;
      if (stale.peerKey && stale.peerKey !== key) return false;
      own.pairs.delete(from);
      stale.hangup('replaced by a new call').catch(() => {});
    }
    if (own.pairs.size >= MAX_PAIRS) return false;
    const pair = this.ui.newPair({ peer: from, peerKey: key, id: payload.call, kind: own.kind, role: 'callee', stream: own.stream });
    this.adopt(from, pair);
    pair.ring();
    pair.accept().catch((error) => this.ui.log('room-call', { error: String(error), peer: from }));
    return true;
  }

  /** The pairwise call with id `id`, if it is one of this page's. */
  pair(id) {
    for (const pair of this.own?.pairs.values() ?? []) if (pair.id === id) return pair;
    if (this.own?.link?.call.id === id) return this.own.link.call;
    return null;
  }

  /**
   * Starts the call of `room` (`kind` audio or video) or, when one runs there, joins it.
   * Media first (the browser asks for the camera and microphone), then the signed request.
   */
  async startOrJoin(room, kind = 'video') {
    const app = this.app;
    if (this.own) throw Object.assign(new Error('already in a room call'), { key: 'call.alreadyInCall' });
    if (this.ui.busy()) throw Object.assign(new Error('in a call'), { key: 'call.alreadyInCall' });
    if (!app.client || app.client.state !== 'online') throw Object.assign(new Error('offline'), { key: 'call.notConnected' });
    this.stopRinging();
    const running = this.known.get(room);
    const callKind = running ? running.kind : kind;
    const stream = await localMedia(callKind === 'desktop' ? 'audio' : callKind, 'caller');
    const id = running ? running.call : newId('rc');
    // Listed already: this page was in the call before a reload (the node keeps the place 30 s).
    const callAll = !!running?.participants.some((p) => p.name === app.identity.name);
    this.own = { room, call: id, kind: callKind, stream, camera: stream.getVideoTracks()[0] || null, screen: null, pairs: new Map(), muted: false, callAll, link: null };
    this.startSpeakers();
    this.emit();
    try {
      await this.request(running ? 'join' : 'start', running ? {} : { kind: callKind });
    } catch (error) {
      // Someone started first: their state is on its way to every member; join theirs.
      if (!running && error?.code === 'forbidden') {
        for (let i = 0; i < 40 && !this.known.get(room); i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
        const theirs = this.known.get(room);
        if (theirs && this.own?.room === room) {
          this.own.call = theirs.call;
          try {
            await this.request('join');
            return this.own.call;
          } catch (again) {
            error = again;
          }
        }
      }
      this.endOwn();
      this.emit();
      throw Object.assign(new Error(error?.reason || error?.message || String(error)), { code: error?.code });
    }
    const state = this.known.get(room);
    if (state?.call === this.own?.call) await this.follow(state);
    return id;
  }

  /** Sends a signed `room-call` for this page's own call; `extra` adds signed fields. */
  async request(action, extra = {}) {
    const own = this.own;
    const identity = this.app.identity;
    const body = await signRoomCall(identity, { action, from: identity.name, room: own.room, call: own.call, ts: Date.now() / 1000, ...extra });
    return this.app.client.request('room-call', own.room, body);
  }

  /** Leaves this page's room call: `leave` to the node, every pairwise call hung up. */
  async leave() {
    const own = this.own;
    if (!own) return;
    const sent = this.request('leave').catch((error) => this.ui.log('room-call', { leave: String(error?.reason || error) }));
    this.endOwn();
    this.emit();
    await sent;
  }

  endOwn() {
    const own = this.own;
    if (!own) return;
    this.own = null;
    clearTimeout(own.moveTimer);
    this.speakers?.stop();
    this.speakers = null;
    for (const pair of own.pairs.values()) pair.hangup('left the room call').catch(() => {});
    if (own.link) own.link.call.hangup('left the room call').catch(() => {});
    for (const track of own.stream.getTracks()) track.stop();
    if (own.screen) for (const track of own.screen.getTracks()) track.stop();
    if (own.camera) own.camera.stop();
  }

  /** Who speaks (speaking.js): every audio receiver of this page's calls, and its own microphone. */
  startSpeakers() {
    this.speakers = new Speakers({
      me: () => this.app.identity?.name,
      sources: () => {
        const own = this.own;
        if (!own) return [];
        const sources = [];
        for (const [name, pair] of own.pairs) {
          for (const receiver of pair.pc?.getReceivers() ?? []) {
            if (receiver.track?.kind === 'audio') sources.push({ name, receiver, fallback: pair.lastStats?.audio.audioLevel });
          }
        }
        for (const { name, receiver } of own.link?.audioReceivers() ?? []) {
          if (!own.pairs.has(name)) sources.push({ name, receiver, fallback: own.link.stats[name]?.audio.audioLevel });
        }
        return sources;
      },
      own: async () => {
        const own = this.own;
        const pc = own?.link?.call.pc ?? [...(own?.pairs.values() ?? [])].find((pair) => pair.pc)?.pc;
        if (!pc || own.muted) return null;
        let level = null;
        (await pc.getStats()).forEach((s) => {
          if (s.type === 'media-source' && s.kind === 'audio' && typeof s.audioLevel === 'number') level = Math.max(level ?? 0, s.audioLevel);
        });
        return level;
      },
      changed: () => this.emit(),
    });
    this.speakers.start();
  }

  /** Whether `name` speaks now (the grid highlights its tile). */
  speaking(name) {
    return !!this.speakers?.has(name);
  }

  /** Mute: the microphone track (shared by every pairwise call) sends silence. */
  setMuted(on) {
    if (!this.own) return;
    this.own.muted = !!on;
    for (const track of this.own.stream.getAudioTracks()) track.enabled = !on;
    this.emit();
  }

  /**
   * Shares the screen with everyone in the call: each pairwise call sends the screen instead of
   * the camera (`replaceTrack`, no new offer; in an audio call a new offer adds video, as a
   * one-to-one call does), and this page joins again with `screen: true` signed, so every
   * participant's page shows it large. Stopping goes back to the camera.
   */
  async startSharing() {
    const own = this.own;
    if (!own || own.screen) return;
    const screen = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
    const track = screen.getVideoTracks()[0];
    own.screen = screen;
    track.onended = () => this.stopSharing().catch(() => {});
    if (own.camera) own.stream.removeTrack(own.camera);
    own.stream.addTrack(track);
    for (const pair of this.mediaCalls()) await this.sendVideo(pair, track);
    await this.request('join', { screen: true });
    this.emit();
  }

  async stopSharing() {
    const own = this.own;
    if (!own?.screen) return;
    const track = own.screen.getVideoTracks()[0];
    own.screen = null;
    own.stream.removeTrack(track);
    track.stop();
    if (own.camera) own.stream.addTrack(own.camera);
    for (const pair of this.mediaCalls()) await this.sendVideo(pair, own.camera);
    await this.request('join');
    this.emit();
  }

  /** Every call that sends this page's media: the pairwise ones and the one to the forwarder. */
  mediaCalls() {
    return [...(this.own?.pairs.values() ?? []), ...(this.own?.link ? [this.own.link.call] : [])];
  }

  async sendVideo(pair, track) {
    const sender = pair.pc?.getSenders().find((s) => s.track?.kind === 'video' || (!s.track && s.transport && pair.kind === 'video'));
    try {
      if (sender) await sender.replaceTrack(track);
      else if (track && pair.state === 'connected') await pair.addVideo(track);
    } catch (error) {
      this.ui.log('room-call', { share: String(error.message || error), peer: pair.peer });
    }
  }

  /** Who shares a screen now (its tile is shown large), by the signed `screen` of its join. */
  sharer() {
    const own = this.own;
    if (!own) return null;
    if (own.screen) return this.app.identity.name;
    const state = this.known.get(own.room);
    return state?.participants.find((p) => p.screen && (own.pairs.has(p.name) || !!own.link?.stream(p.name)))?.name ?? null;
  }

  /** JSON-friendly view for the page's tests. */
  view() {
    const own = this.own;
    return {
      known: Object.fromEntries([...this.known].map(([room, s]) => [room, { call: s.call, kind: s.kind, participants: s.participants.map((p) => p.name), screen: s.participants.filter((p) => p.screen).map((p) => p.name), refused: s.refused, limit: s.limit,
        forwarder: s.forwarder && { address: s.forwarder.address, key: s.forwarder.key }, forwarderRefusal: s.forwarderRefusal }])),
      ringing: this.ringing,
      own: own && {
        room: own.room, call: own.call, kind: own.kind, muted: own.muted, sharing: !!own.screen, sharer: this.sharer(),
        pairs: Object.fromEntries([...own.pairs].map(([name, pair]) => [name, { ...pair.view(), stats: pair.lastStats }])),
        forwarded: own.link?.view() ?? null, moveMs: own.moveMs ?? null, speaking: [...(this.speakers?.speaking ?? [])],
      },
    };
  }
}
