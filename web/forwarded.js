// The page as a participant of a forwarded room call (docs/protocol.md "Room calls", *Forwarded
// mode*; docs/rooms.md "Moving to the forwarder"). Above the room's limit the node relays the
// call through its forwarder (a selective forwarding unit): this page then has one call with it,
// sends its picture and sound once, and receives every other participant's streams over that
// one connection, one `sendonly` section per stream, grouped by `msid` = the sender's address.
//
// The node says so in `room-call-state` with an assignment signed by its node key (for a room of
// another node: the room's node's assignment, checked and signed anew by this page's node). The
// page takes it only under the key it pinned for the node at login (`welcome.nodeKey`, trust on first
// use), exactly as the CLI does (Sources/Signaling/Identity/ForwarderSigning.swift): otherwise a
// node, or anyone who can inject a state, could send the whole room's media to a forwarder of
// its choosing.

import { bareName } from './call.js';
import { verifySignature } from './identity.js';

const SIGNING_CONTEXT = 'meshnode.v1 forwarder\n';
/** The longest an assignment is good for, seconds after its `ts` (docs/protocol.md). */
export const MAX_LIFETIME = 3600;
/** Seconds of clock difference allowed either way (call setup's freshness window). */
const WINDOW = 120;
/** Senders one forwarded call decodes at most (the forwarder's bound of 20, less this page). */
export const MAX_SENDERS = 19;
/**
 * Seconds the pairwise calls stay up after the call to the forwarder started when no media came
 * through it yet; then they end anyway (the forwarded call carries the room from then on).
 */
export const MOVE_DEADLINE = 10;
/**
 * Seconds the call to the forwarder may stay `disconnected` before the page restarts ICE (the
 * forwarder answers the restart and keeps the DTLS session), and seconds a restart may take to
 * bring the path back before the page hangs up and places a new call instead.
 */
export const RESTART_AFTER_DISCONNECT = 2;
export const RESTART_DEADLINE = 12;
/**
 * Seconds without any packet from the forwarder after which the page restarts ICE although the
 * browser still says `connected` (Chromium kept a dead loopback path `connected` for 20 s and
 * more): the others' voices alone bring 50 packets a second, as for the CLI (docs/calls.md).
 */
export const SILENCE_RESTART = 3;
/** Calls placed to one forwarder in a row without its media arriving, before the page gives up. */
export const MAX_FORWARDER_TRIES = 4;
/**
 * Simulcast for the forwarder only (RFC 8853, rids as Chromium writes them): a quarter, half
 * and full resolution layer, so that the forwarder can give each receiver what its link
 * carries. Pairwise calls send one layer (their receiver is the only one).
 */
export const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4 },
  { rid: 'h', scaleResolutionDownBy: 2 },
  { rid: 'f', scaleResolutionDownBy: 1 },
];

/**
 * The layers of SIMULCAST_LAYERS to offer for a camera picture of `width` x `height`: the
 * top ones, halving down from the full picture. Chromium encodes only as many layers as the
 * input allows (its "legacy" simulcast limit, on by default: three from 960x540, two from
 * 480x270, else one) and drops the encodings at the end of the list, so three layers from a
 * camera at its default 640x480 never sent the full picture (`f`; docs/rooms.md "Chromium's
 * top layer"). Offered this way, the top layer is always the camera's own picture.
 */
export function simulcastLayersFor({ width, height }) {
  const pixels = (width || 0) * (height || 0);
  const count = pixels >= 960 * 540 ? 3 : pixels >= 480 * 270 ? 2 : 1;
  const kept = SIMULCAST_LAYERS.slice(SIMULCAST_LAYERS.length - count);
  return kept.map((layer, index) => ({ rid: layer.rid, scaleResolutionDownBy: 2 ** (kept.length - 1 - index) }));
}

/** The size of the picture `stream` sends now (its video track's settings; 0x0 without one). */
export function pictureSize(stream) {
  const settings = stream?.getVideoTracks()[0]?.getSettings?.() ?? {};
  return { width: settings.width || 0, height: settings.height || 0 };
}

/** Where the node's own key is pinned: `@host:port`, as the CLI and node links pin it. */
export function nodePinAddress(pins) {
  return `@${pins.nodeHost}`;
}

/** An error with a code (as on the wire) and a reason a person can act on. */
export class AssignmentError extends Error {
  constructor(code, reason) {
    super(reason);
    this.code = code;
  }
}

function decodedKeyLength(text) {
  try {
    return atob(text).length;
  } catch {
    return -1;
  }
}

/**
 * Checks a forwarder assignment (`room-call-state.forwarder`) for the state's `room` and `call`:
 * signed by `nodeKey` (the key pinned for this page's node) under the context line
 * `meshnode.v1 forwarder\n`, for this room and call, not expired (±120 s), at most an hour long,
 * naming a forwarder and a valid key. Fields it does not know are ignored (a later node may add
 * some). Returns `{address, key, ts, expires}`; throws AssignmentError (`bad-signature`,
 * `bad-field`, `stale`, `forbidden`).
 */
export async function verifyAssignment(signed, { room, call, nodeKey, now = Date.now() / 1000 }) {
  if (typeof nodeKey !== 'string' || !nodeKey) {
    throw new AssignmentError('bad-signature', 'this node sent no key at login (nodeKey), so its forwarder assignment cannot be checked');
  }
  if (!signed || typeof signed.payload !== 'string' || typeof signed.key !== 'string' || typeof signed.sig !== 'string') {
    throw new AssignmentError('bad-field', 'the forwarder assignment is not a signed body (payload, key, sig)');
  }
  if (signed.key !== nodeKey) {
    throw new AssignmentError('bad-signature', `the forwarder assignment is signed by ${signed.key.slice(0, 12)}…, not by the key pinned for this node (${nodeKey.slice(0, 12)}…)`);
  }
  if (!(await verifySignature(nodeKey, signed.sig, SIGNING_CONTEXT + signed.payload))) {
    throw new AssignmentError('bad-signature', 'the signature of the forwarder assignment does not verify under the node key');
  }
  let payload;
  try {
    payload = JSON.parse(signed.payload);
  } catch {
    throw new AssignmentError('bad-field', 'the forwarder assignment is not JSON');
  }
  if (!payload || typeof payload !== 'object' || typeof payload.room !== 'string' || typeof payload.call !== 'string') {
    throw new AssignmentError('bad-field', 'the forwarder assignment names no room or call');
  }
  // A room of another node (`#ops@east:8443`): this page's node verified the host's assignment
  // under the key its link proved and signed its own naming the room in full (docs/rooms.md
  // "Forwarded calls for members of other nodes"), so the same name at another host is refused.
  const host = hostOf(room);
  const sameRoom = host === null ? bareName(payload.room) === bareName(room) : payload.room === room;
  if (!sameRoom || payload.call !== call) {
    throw new AssignmentError('bad-field', `the forwarder assignment is for ${payload.call.slice(0, 64)} in ${payload.room.slice(0, 40)}, not ${String(call).slice(0, 64)} in ${String(room).slice(0, 40)}`);
  }
  const { ts, expires } = payload;
  if (!Number.isFinite(ts) || !Number.isFinite(expires) || expires - ts > MAX_LIFETIME || now > expires + WINDOW || now < ts - WINDOW) {
    throw new AssignmentError('stale', `the forwarder assignment was signed at ${ts} for until ${expires}; it is ${Math.round(now)} here`);
  }
  if (typeof payload.forwarder !== 'string' || !payload.forwarder || new TextEncoder().encode(payload.forwarder).length > 200
      || typeof payload.key !== 'string' || decodedKeyLength(payload.key) !== 32) {
    throw new AssignmentError('bad-field', 'the forwarder assignment names no forwarder or no valid key');
  }
  // The forwarder is a session at the room's node: `forwarder…` here, `forwarder…@host` there.
  const name = bareName(payload.forwarder);
  const isForwarder = name === 'forwarder' || name.startsWith('forwarder.');
  if (!isForwarder || hostOf(payload.forwarder) !== host || (host !== null && payload.host !== host)) {
    throw new AssignmentError('bad-field', `the forwarder assignment names ${payload.forwarder.slice(0, 80)}, not a forwarder at the room's node ${host ?? 'here'}`);
  }
  return { address: payload.forwarder, key: payload.key, ts, expires, host };
}

/** The node part of `name@host:port` or `#room@host:port`, null for a bare one. */
function hostOf(address) {
  const text = String(address);
  const at = text.indexOf('@');
  return at < 0 ? null : text.slice(at + 1);
}

/**
 * This page's call with the forwarder and what arrives over it: one MediaStream per sender (the
 * browser groups a sender's audio and video by `msid`), per-sender statistics from getStats, and
 * the moment the first media of another participant was decoded (then the pairwise calls go).
 */
export class ForwardedLink extends EventTarget {
  /** `call` is a Call (call.js) to the forwarder, bound to its key; `assignment` what it verified. */
  constructor(call, assignment) {
    super();
    this.call = call;
    this.assignment = assignment;
    this.streams = new Map(); // sender → MediaStream
    this.trackSender = new Map(); // track id → sender
    this.stats = {}; // sender → {video: {...}, audio: {...}}
    this.layers = []; // what this page sends of its video, per simulcast layer (rid)
    this.uplink = null; // the browser's estimate of its uplink to the forwarder (candidate pair)
    this.decodedAt = null; // ms after the call started when another participant was decoded
    this.received = 0; // packets received from the forwarder so far (every sender), and since when that count stands
    this.receivedSince = performance.now();
    call.addEventListener('track', ({ detail }) => this.track(detail));
    call.addEventListener('stats', () => this.collect().catch(() => {}));
  }

  get address() {
    return this.assignment.address;
  }

  get key() {
    return this.assignment.key;
  }

  /** Whether media of another participant came through the forwarder. */
  get decoding() {
    return this.decodedAt !== null;
  }

  track({ track, streams }) {
    // The forwarder names the sender in the section's msid; a track without one is not a
    // participant's (the forwarder sends nothing but offered streams, docs/protocol.md).
    const stream = streams?.[0];
    const sender = stream?.id;
    if (!sender || sender === '-' || sender.length > 200) return;
    if (!this.streams.has(sender) && this.streams.size >= MAX_SENDERS) return;
    this.streams.set(sender, stream);
    this.trackSender.set(track.id, sender);
    this.dispatchEvent(new Event('change'));
  }

  /**
   * The stream of `sender` (as this page's node writes it), if the forwarder offered one. The
   * forwarder of a room of another node names senders as that node writes them: its own peers
   * bare (`bob`, here `bob@host`), this node's peers qualified (`carol@<this node>`, here `carol`).
   */
  stream(sender) {
    const direct = this.streams.get(sender);
    const host = this.assignment.host;
    if (direct || !host) return direct ?? null;
    const at = sender.indexOf('@');
    if (at >= 0) return sender.slice(at + 1) === host ? this.streams.get(sender.slice(0, at)) ?? null : null;
    const theirs = [...this.streams.keys()].filter((name) => name.startsWith(`${sender}@`) && !name.endsWith(`@${host}`));
    return theirs.length === 1 ? this.streams.get(theirs[0]) : null;
  }

  /** Per-sender statistics (inbound-rtp by track), after each of the call's stats rounds. */
  async collect() {
    const pc = this.call.pc;
    if (!pc) return;
    const report = await pc.getStats();
    const stats = {};
    const layers = [];
    let uplink = null;
    const localPorts = [];
    report.forEach((s) => {
      if (s.type === 'local-candidate' && s.protocol === 'udp' && s.port) localPorts.push(s.port);
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        layers.push({ rid: s.rid ?? null, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0, framesEncoded: s.framesEncoded || 0,
          framesSent: s.framesSent || 0, bytesSent: s.bytesSent || 0, retransmittedBytesSent: s.retransmittedBytesSent || 0, targetBitrate: s.targetBitrate || 0,
          active: s.active !== false, limitation: s.qualityLimitationReason ?? null });
      }
      // The browser's own estimate of its uplink to the forwarder (what limits its layers).
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
        const local = report.get(s.localCandidateId);
        // Its bytesSent counts everything on the path (padding and probes too), unlike the layers'.
        uplink = { availableOutgoingBitrate: s.availableOutgoingBitrate || 0, roundTripTime: s.currentRoundTripTime ?? null,
          localAddress: local?.address ?? null, localPort: local?.port ?? null, bytesSent: s.bytesSent || 0 };
      }
      if (s.type !== 'inbound-rtp') return;
      const sender = this.trackSender.get(s.trackIdentifier);
      if (!sender) return;
      const entry = stats[sender] ??= {
        video: { framesDecoded: 0, packetsReceived: 0, frameWidth: 0, frameHeight: 0 },
        audio: { packetsReceived: 0, totalAudioEnergy: 0, audioLevel: 0 },
      };
      if (s.kind === 'video') {
        entry.video.framesDecoded += s.framesDecoded || 0;
        entry.video.packetsReceived += s.packetsReceived || 0;
        entry.video.frameWidth = Math.max(entry.video.frameWidth, s.frameWidth || 0);
        entry.video.frameHeight = Math.max(entry.video.frameHeight, s.frameHeight || 0);
      } else if (s.kind === 'audio') {
        entry.audio.packetsReceived += s.packetsReceived || 0;
        entry.audio.totalAudioEnergy += s.totalAudioEnergy || 0;
        entry.audio.audioLevel = Math.max(entry.audio.audioLevel, s.audioLevel || 0);
      }
    });
    this.stats = stats;
    this.watchSilence(report);
    this.layers = layers.sort((a, b) => String(a.rid).localeCompare(String(b.rid)));
    this.uplink = uplink;
    this.localPorts = localPorts; // every UDP port this call gathered on (a test cuts them all)
    const decoded = Object.values(stats).some((s) => s.video.framesDecoded > 0 || s.audio.totalAudioEnergy > 0);
    if (decoded && this.decodedAt === null) {
      this.decodedAt = Math.round(performance.now() - this.call.startedAt);
      this.dispatchEvent(new Event('decoding'));
    }
    this.dispatchEvent(new Event('change'));
  }

  /**
   * Restarts ICE when nothing at all arrived for SILENCE_RESTART seconds on a call that had
   * media (the forwarder answers the restart and keeps the DTLS session); media arriving again
   * ends the restart (call.js ends the call if that takes more than RESTART_DEADLINE).
   */
  watchSilence(report) {
    let received = 0;
    report.forEach((s) => { if (s.type === 'inbound-rtp') received += s.packetsReceived || 0; });
    const now = performance.now();
    if (received !== this.received) {
      if (received > this.received) this.call.mediaBack();
      this.received = received;
      this.receivedSince = now;
    } else if (received > 0 && this.call.state === 'connected' && now - this.receivedSince >= SILENCE_RESTART * 1000) {
      this.receivedSince = now;
      this.call.restartIce(true);
    }
  }

  /** The audio receivers by sender, for who speaks (speaking.js). */
  audioReceivers() {
    const result = [];
    for (const receiver of this.call.pc?.getReceivers() ?? []) {
      const sender = receiver.track?.kind === 'audio' ? this.trackSender.get(receiver.track.id) : null;
      if (sender) result.push({ name: sender, receiver });
    }
    return result;
  }

  /** JSON-friendly view for the page's tests. */
  view() {
    return {
      address: this.address, key: this.key, call: this.call.view(), decodedAt: this.decodedAt, layers: this.layers, uplink: this.uplink,
      localPorts: this.localPorts ?? [],
      senders: Object.fromEntries([...this.streams.keys()].map((name) => [name, this.stats[name] ?? null])),
    };
  }
}
