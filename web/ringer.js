// Incoming-call alerts: a ring tone made with WebAudio (no audio file) while a call rings, and
// a system notification when the page is not visible (another tab, minimised window).

let context = null;

/**
 * Browsers start audio only after a user gesture: the page calls this from one (the login
 * button), so that a later call can ring without the user touching the page again.
 */
export function unlockAudio() {
  try {
    context ??= new AudioContext();
    if (context.state === 'suspended') context.resume().catch(() => {});
  } catch {
    // No WebAudio: calls still show the dialog and the notification.
  }
}

/**
 * Asks for permission to show notifications, once (when the browser has not been answered).
 * Called from the login button: asking on page load is refused by browsers and users alike.
 */
export function askNotificationPermission() {
  if (!('Notification' in globalThis) || Notification.permission !== 'default') return;
  Notification.requestPermission().catch(() => {});
}

/** How the ring repeats: two short tones, then a pause (seconds). */
const PATTERN = { period: 3, bursts: [[0, 0.4], [0.6, 1.0]], frequencies: [440, 480], level: 0.12 };

/** One ringing call: the tone, and a notification while the page is hidden. */
export class Ringer {
  constructor() {
    this.timer = null;
    this.notification = null;
    this.message = null;
    this.onVisibility = () => this.notifyIfHidden();
    this.notified = 0;
  }

  /** Starts ringing; `message` is {title, body} for the notification. Idempotent. */
  start(message) {
    this.message = message;
    if (this.timer) return;
    try {
      context ??= new AudioContext();
      if (context.state === 'suspended') context.resume().catch(() => {});
      this.playOnce();
      this.timer = setInterval(() => this.playOnce(), PATTERN.period * 1000);
    } catch {
      this.timer = null;
    }
    document.addEventListener('visibilitychange', this.onVisibility);
    this.notifyIfHidden();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.notification?.close();
    this.notification = null;
    this.message = null;
  }

  /** Whether the tone is sounding now (a suspended AudioContext is silent). */
  get toneOn() {
    return !!this.timer && context?.state === 'running';
  }

  playOnce() {
    const start = context.currentTime + 0.05;
    const gain = context.createGain();
    gain.gain.value = 0;
    gain.connect(context.destination);
    for (const [from, to] of PATTERN.bursts) {
      // Short ramps: a tone switched on and off abruptly clicks.
      gain.gain.setValueAtTime(0, start + from);
      gain.gain.linearRampToValueAtTime(PATTERN.level, start + from + 0.02);
      gain.gain.setValueAtTime(PATTERN.level, start + to - 0.02);
      gain.gain.linearRampToValueAtTime(0, start + to);
    }
    const end = start + PATTERN.bursts.at(-1)[1] + 0.05;
    for (const frequency of PATTERN.frequencies) {
      const oscillator = context.createOscillator();
      oscillator.frequency.value = frequency;
      oscillator.connect(gain);
      oscillator.start(start);
      oscillator.stop(end);
    }
  }

  notifyIfHidden() {
    if (!this.message || this.notification || document.visibilityState !== 'hidden') return;
    if (!('Notification' in globalThis) || Notification.permission !== 'granted') return;
    let notification;
    try {
      notification = new Notification(this.message.title, { body: this.message.body, tag: 'meshnode-call', requireInteraction: true });
    } catch {
      return; // Android's Chrome shows notifications only from a service worker: the tone still rings.
    }
    notification.onclick = () => {
      globalThis.focus();
      notification.close();
    };
    this.notification = notification;
    this.notified += 1;
  }
}
