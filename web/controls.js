// Controls of a running call (docs/web.md "During a call"): mute, camera off, the choice of
// camera, microphone and speaker, and switching between the camera and a screen share.
//
// Everything works by replacing the track an RTCRtpSender sends (RTCRtpSender.replaceTrack,
// W3C WebRTC §5.2), not by renegotiating, wherever the call already has the sender: the SDP
// stays as the first offer and answer made it. Only an audio call's first share needs a new
// offer (Call.addVideo). Switching a video sender from the camera to the screen changes the picture's
// size, which VP8 carries in its next key frame (RFC 6386 §9.1); the receiver needs nothing new.

/**
 * The controls of one call. State: `muted`, `cameraOff`, `sharing`; `apply()` makes the
 * senders agree with it and can run at any time (before the connection exists it only sets the
 * local tracks; it runs again once the call is connected).
 *
 * Events: `change` (after any change, for the page to redraw), `preview` (the MediaStream the
 * page shows as "you": the camera, or the screen while sharing, or null with the camera off).
 */
export class CallControls extends EventTarget {
  constructor(call) {
    super();
    this.call = call;
    this.muted = false;
    this.cameraOff = false;
    this.sharing = false;
    this.screenTrack = null;
    this.busy = Promise.resolve();
  }

  /** The local track of `kind` from the camera or microphone (never the screen share). */
  deviceTrack(kind) {
    return this.call.localStream?.getTracks().find((t) => t.kind === kind) || null;
  }

  /** The transceiver that carries `kind` to the other party, if this side sends that kind. */
  transceiver(kind) {
    const pc = this.call.pc;
    if (!pc) return null;
    return pc.getTransceivers().find((t) => !t.stopped && t.receiver.track?.kind === kind
      && (t.currentDirection === 'sendrecv' || t.currentDirection === 'sendonly')) || null;
  }

  /** Whether the call sends the microphone (audio and video calls; not a desktop share). */
  get hasMicrophone() {
    return !!this.deviceTrack('audio');
  }

  /** Whether the call sends the camera (video calls). */
  get hasCamera() {
    return this.call.kind === 'video' && !!(this.deviceTrack('video') || this.cameraOff || this.sharing);
  }

  /**
   * Whether this side can switch to a screen share in this call: a video call (either party,
   * by replacing the camera), or an audio call (either party, by a new offer that adds video:
   * Call.addVideo; a peer that does not answer it within 5 s is taken to refuse it, and the
   * page says so). A desktop call's sharer already shares.
   */
  get canShare() {
    return (this.call.kind === 'video' || this.call.kind === 'audio') && typeof navigator.mediaDevices?.getDisplayMedia === 'function';
  }

  /** Runs `step` after the previous control step: two quick clicks do not interleave. */
  queue(step) {
    this.busy = this.busy.then(step, step);
    return this.busy;
  }

  setMuted(muted) {
    return this.queue(async () => {
      this.muted = !!muted;
      await this.apply();
    });
  }

  setCameraOff(off) {
    return this.queue(async () => {
      this.cameraOff = !!off;
      await this.apply();
    });
  }

  /**
   * Starts sharing the screen (the browser asks which screen or window). The camera stays
   * open, so stopping the share switches back at once. The browser's own "Stop sharing" ends
   * the share, not the call.
   */
  startSharing() {
    return this.queue(async () => {
      if (this.sharing || !this.canShare) return;
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
      const track = stream.getVideoTracks()[0];
      if (!track || this.call.state === 'ended') {
        for (const t of stream.getTracks()) t.stop();
        return;
      }
      track.onended = () => this.stopSharing();
      if (this.call.kind === 'audio' && !this.transceiver('video')) {
        // No video channel yet: negotiate one (the only case that needs a new offer).
        try {
          await this.call.addVideo(track);
        } catch (error) {
          track.onended = null;
          track.stop();
          error.key = error.code === 'not-answered' ? 'controls.shareNotAnswered' : 'controls.failed';
          throw error;
        }
      }
      this.screenTrack = track;
      this.sharing = true;
      await this.apply();
    });
  }

  stopSharing() {
    return this.queue(async () => {
      if (!this.sharing) return;
      this.sharing = false;
      const track = this.screenTrack;
      this.screenTrack = null;
      await this.apply();
      if (track) {
        track.onended = null;
        track.stop();
      }
    });
  }

  /**
   * Uses another camera or microphone (`deviceId` from enumerateDevices): opens it, sends it
   * instead of the old one, and closes the old one. Mute and camera-off carry over.
   */
  useDevice(kind, deviceId) {
    return this.queue(async () => {
      const old = this.deviceTrack(kind);
      if (!old || old.getSettings().deviceId === deviceId) return;
      const constraints = { [kind]: { deviceId: { exact: deviceId } } };
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      const track = stream.getTracks().find((t) => t.kind === kind);
      if (this.call.state === 'ended') {
        track.stop();
        return;
      }
      this.call.localStream.removeTrack(old);
      this.call.localStream.addTrack(track);
      // The new one is sent before the old one closes: no gap the other side could notice.
      await this.apply();
      old.stop();
    });
  }

  /**
   * Makes the senders agree with the state: the microphone is sent but disabled when muted (so
   * silence flows and the other side's audio level reads 0); the video sender carries the
   * screen while sharing, nothing with the camera off (frames stop, no black picture is sent),
   * else the camera.
   */
  async apply() {
    const microphone = this.deviceTrack('audio');
    if (microphone) microphone.enabled = !this.muted;
    const camera = this.deviceTrack('video');
    if (camera && this.call.kind === 'video') camera.enabled = !this.cameraOff;
    if (this.call.kind !== 'desktop') {
      const video = this.sharing ? this.screenTrack : this.cameraOff || this.call.kind !== 'video' ? null : camera;
      const transceiver = this.transceiver('video');
      if (transceiver && transceiver.sender.track !== video) await transceiver.sender.replaceTrack(video);
      const audio = this.transceiver('audio');
      if (audio && microphone && audio.sender.track !== microphone) await audio.sender.replaceTrack(microphone);
      this.dispatchEvent(new CustomEvent('preview', { detail: video ? new MediaStream([video]) : null }));
    }
    this.dispatchEvent(new CustomEvent('change'));
  }

  /** Stops the share's track when the call ends (the camera and microphone are the call's). */
  close() {
    if (this.screenTrack) {
      this.screenTrack.onended = null;
      this.screenTrack.stop();
      this.screenTrack = null;
    }
  }

  /** JSON-friendly view for the page and tests. */
  view() {
    const settings = (kind) => this.deviceTrack(kind)?.getSettings().deviceId ?? null;
    return {
      muted: this.muted, cameraOff: this.cameraOff, sharing: this.sharing,
      canShare: this.canShare, hasCamera: this.hasCamera, hasMicrophone: this.hasMicrophone,
      microphone: settings('audio'), camera: settings('video'),
      sending: this.call.pc ? this.call.pc.getSenders().map((s) => (s.track ? `${s.track.kind}:${s.track === this.screenTrack ? 'screen' : 'device'}` : 'none')) : [],
    };
  }
}

/**
 * The devices to choose from: `{audioinput, videoinput, audiooutput}`, each a list of
 * `{deviceId, label}`. Labels are known only after a permission was granted (during a call).
 * `audiooutput` is empty where the browser cannot choose the speaker (no setSinkId).
 */
export async function listDevices() {
  const found = { audioinput: [], videoinput: [], audiooutput: [] };
  if (!navigator.mediaDevices?.enumerateDevices) return found;
  const canChooseSpeaker = typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
  for (const device of await navigator.mediaDevices.enumerateDevices()) {
    if (!found[device.kind] || !device.deviceId) continue;
    if (device.kind === 'audiooutput' && !canChooseSpeaker) continue;
    // "default" and "communications" repeat a real device under another id (Chromium).
    if (device.deviceId === 'communications') continue;
    found[device.kind].push({ deviceId: device.deviceId, label: device.label });
  }
  return found;
}
