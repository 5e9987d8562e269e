// Who speaks in a room call, for the grid's highlight. The level of each received audio stream
// comes from the RFC 6464 client-to-mixer header extension (`ssrc-audio-level`, negotiated in
// every call and forwarded unchanged by the forwarder, docs/protocol.md *Forwarded mode*):
// `RTCRtpReceiver.getSynchronizationSources()` gives it per packet source as a linear 0..1
// value (RFC 6464 §3 carries -dBov; the browser converts it). A stream without the extension
// falls back to getStats' `audioLevel`, which the browser measures on the decoded sound. The
// page's own level comes from its microphone's `media-source` statistics.

/** Linear level (0..1) from which a participant counts as speaking: about -36 dBov. */
export const SPEAKING_LEVEL = 0.016;
/** How long the highlight stays after the last loud packet, so that it does not flicker between words. */
export const HOLD_MS = 800;
/** How often the levels are read. */
export const POLL_MS = 300;

/** The RFC 6464 level of a receiver's newest packet source, or null when it carries none. */
export function receiverLevel(receiver) {
  try {
    const sources = receiver.getSynchronizationSources?.() ?? [];
    const levels = sources.map((s) => s.audioLevel).filter((level) => typeof level === 'number');
    return levels.length ? Math.max(...levels) : null;
  } catch {
    return null;
  }
}

/**
 * Polls levels while a room call runs. `sources()` returns `[{name, receiver, fallback}]` (the
 * audio receivers of the pairwise calls and of the forwarded call; `fallback` a getStats level)
 * and `own()` a promise of this page's microphone level (or null). `changed()` is called when
 * the set of speakers changes.
 */
export class Speakers {
  constructor({ sources, own, me, changed, now = () => performance.now() }) {
    Object.assign(this, { sources, own, me, changed, now });
    this.loudAt = new Map(); // name → time of the last loud reading
    this.speaking = new Set();
    this.timer = null;
  }

  start() {
    if (this.timer) return;
    this.timer = setInterval(() => this.poll().catch(() => {}), POLL_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.loudAt.clear();
    this.speaking = new Set();
  }

  /** One reading of every level; exposed for tests that drive the clock themselves. */
  async poll() {
    const now = this.now();
    const readings = [];
    for (const { name, receiver, fallback } of this.sources()) readings.push([name, receiverLevel(receiver) ?? fallback ?? 0]);
    const mine = await this.own();
    if (typeof mine === 'number') readings.push([this.me(), mine]);
    this.update(readings, now);
  }

  /** Takes `[[name, level]]` read at `now`; who spoke within HOLD_MS is speaking. */
  update(readings, now) {
    for (const [name, level] of readings) if (level >= SPEAKING_LEVEL) this.loudAt.set(name, now);
    const speaking = new Set();
    for (const [name, at] of this.loudAt) {
      if (now - at <= HOLD_MS) speaking.add(name);
      else this.loudAt.delete(name);
    }
    const same = speaking.size === this.speaking.size && [...speaking].every((name) => this.speaking.has(name));
    this.speaking = speaking;
    if (!same) this.changed();
  }

  has(name) {
    return this.speaking.has(name);
  }
}
