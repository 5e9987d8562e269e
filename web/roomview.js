// What the page shows of room calls (roomcall.js): in an open room, whether a call runs there
// and the buttons to start or join it; while in one, the grid of participants (a tile with the
// name and picture of each; a shared screen large, first) with Mute, Share screen and Leave;
// the ring of a room call as a dialog. Every word comes from the message tables (i18n.js).

import { t } from './i18n.js';

const $ = (id) => document.getElementById(id);

export class RoomCallView {
  /** `roomCalls` is the page's RoomCalls; `page` gives selected() (the open room or contact) and busy(). */
  constructor(roomCalls, page) {
    this.roomCalls = roomCalls;
    this.page = page;
    this.tiles = new Map(); // name → <li> of the grid, kept so that pictures keep playing
  }

  wire(fail) {
    const rc = this.roomCalls;
    const run = (step) => () => step().catch((error) => fail(error));
    // The button pressed goes away with the call's start: focus moves on to *Leave call*, the
    // next step (WCAG 2.4.3), not to the page's body.
    const enter = (kind) => run(async () => {
      await rc.startOrJoin(this.page.selected(), kind);
      if (rc.own) $('room-leave').focus();
    });
    $('room-call-audio').onclick = enter('audio');
    $('room-call-video').onclick = enter('video');
    $('room-call-join').onclick = enter(undefined);
    $('room-leave').onclick = run(async () => {
      await rc.leave();
      // The grid is gone: focus goes to the room's call line, where the call can be joined again.
      if (!$('room-call-box').hidden) $('room-call-line').focus();
    });
    $('room-mute').onclick = () => rc.setMuted(!rc.own?.muted);
    $('room-share').onclick = run(() => (rc.own?.screen ? rc.stopSharing() : rc.startSharing()));
    $('room-ring').addEventListener('close', () => {
      const ringing = rc.ringing;
      if (!ringing) return;
      rc.stopRinging();
      if ($('room-ring').returnValue === 'join') {
        this.page.select(ringing.room);
        rc.startOrJoin(ringing.room).then(() => $('room-leave').focus(), (error) => fail(error));
      }
    });
  }

  ring(ringing) {
    $('room-ring-text').textContent = this.ringText(ringing);
    $('room-ring').returnValue = '';
    if (!$('room-ring').open) $('room-ring').showModal();
    $('room-ring-join').focus();
  }

  stopRing() {
    if ($('room-ring').open) $('room-ring').close();
  }

  ringText(ringing) {
    return t(ringing.kind === 'audio' ? 'roomCall.ring.audio' : 'roomCall.ring.video', { peer: ringing.from, room: ringing.room });
  }

  /** Draws everything of room calls (after each change and a language switch). */
  render() {
    this.renderRoomLine();
    this.renderGrid();
    if (this.roomCalls.ringing && $('room-ring').open) $('room-ring-text').textContent = this.ringText(this.roomCalls.ringing);
  }

  /** The open room's call line: none (start one), one running (join it), or ours. */
  renderRoomLine() {
    const rc = this.roomCalls;
    const room = this.page.selected();
    const box = $('room-call-box');
    box.hidden = !room?.startsWith('#');
    if (box.hidden) return;
    const state = rc.known.get(room);
    const mine = rc.own?.room === room;
    const line = $('room-call-line');
    const names = state?.participants.map((p) => p.name).join(', ') ?? '';
    const full = state && state.participants.length >= state.limit;
    line.textContent = mine ? t('roomCall.inIt', { room, n: state?.participants.length ?? 1 })
      : state ? t(full ? 'roomCall.full' : 'roomCall.running', { room, n: state.participants.length, names, limit: state.limit })
        : t('roomCall.none', { room });
    if (state?.forwarder) line.textContent += ` ${t('roomCall.relayedLine')}`;
    const cannot = !!rc.own || this.page.busy() || this.page.offline();
    for (const [id, kind] of [['room-call-audio', 'audio'], ['room-call-video', 'video']]) {
      const button = $(id);
      button.hidden = !!state || mine;
      button.textContent = t(`roomCall.start.${kind}`);
      button.setAttribute('aria-label', t(`roomCall.start.${kind}.label`, { room }));
      button.disabled = cannot;
    }
    const join = $('room-call-join');
    join.hidden = !state || mine;
    join.textContent = t('roomCall.join');
    join.setAttribute('aria-label', t('roomCall.joinLabel', { room }));
    join.disabled = cannot || !!full;
  }

  /** The grid of participants while this page is in a room call. */
  renderGrid() {
    const rc = this.roomCalls;
    const own = rc.own;
    const panel = $('room-call');
    panel.hidden = !own;
    document.body.classList.toggle('in-room-call', !!own);
    if (!own) {
      if (!this.page.busy()) document.body.classList.remove('in-call');
      for (const tile of this.tiles.values()) tile.querySelector('video').srcObject = null;
      this.tiles.clear();
      $('room-grid').replaceChildren();
      return;
    }
    document.body.classList.add('in-call');
    const me = rc.app.identity.name;
    const state = rc.known.get(own.room);
    const sharer = rc.sharer();
    $('room-call-title').textContent = t(own.kind === 'audio' ? 'roomCall.title.audio' : 'roomCall.title.video', { room: own.room });
    // Said at the top too: on a phone the status under the grid is out of sight.
    const mode = $('room-call-mode');
    mode.hidden = !rc.forwarded;
    mode.textContent = rc.forwarded ? t('roomCall.relayBadge') : '';
    const forwarded = rc.forwarded;
    // Forwarded: every participant the node lists has a tile (their streams come over the one
    // call with the forwarder); peer to peer: those with a pairwise call.
    const others = forwarded ? (state?.participants.map((p) => p.name).filter((n) => n !== me) ?? []) : [...own.pairs.keys()];
    const count = others.length ? t(forwarded ? 'roomCall.countRelayed' : 'roomCall.count', { n: others.length + 1 }) : t('roomCall.waiting');
    $('room-call-status').textContent = sharer ? `${sharer === me ? t('roomCall.youShare') : t('roomCall.sharing', { peer: sharer })} ${forwarded ? t('roomCall.viaRelay') : ''}`.trim() : count;
    // The node's word that the call moved did not verify: say so, plainly, with the reason.
    const refusal = state?.call === own.call ? state.forwarderRefusal : null;
    const notice = $('room-call-notice');
    notice.hidden = !refusal || forwarded;
    notice.textContent = refusal && !forwarded ? t('roomCall.relayRefused', { reason: refusal.reason }) : '';
    const wanted = [me, ...(state?.participants.map((p) => p.name).filter((n) => n !== me && (forwarded || own.pairs.has(n))) ?? []), ...others];
    const names = [...new Set(wanted)];
    for (const [name, tile] of this.tiles) {
      if (!names.includes(name)) {
        tile.querySelector('video').srcObject = null;
        tile.remove();
        this.tiles.delete(name);
      }
    }
    const grid = $('room-grid');
    grid.setAttribute('aria-label', t('roomCall.participants'));
    // Five or more: flatter tiles on a phone, so that the grid fits without much scrolling.
    grid.classList.toggle('many', names.length > 4);
    for (const name of names) {
      let tile = this.tiles.get(name);
      if (!tile) {
        tile = document.createElement('li');
        tile.className = 'tile';
        tile.dataset.name = name;
        const video = document.createElement('video');
        video.autoplay = true;
        video.playsInline = true;
        // Our own picture without our own voice (no echo).
        video.muted = name === me;
        const label = document.createElement('span');
        label.className = 'tile-name';
        const note = document.createElement('span');
        note.className = 'tile-note';
        const speaking = document.createElement('span');
        speaking.className = 'tile-speaking';
        tile.append(video, label, note, speaking);
        this.tiles.set(name, tile);
      }
      grid.append(tile); // in order: us first, then by joining
      const video = tile.querySelector('video');
      const stream = name === me ? own.stream : rc.streamOf(name);
      if (stream && video.srcObject !== stream) {
        video.srcObject = stream;
        video.play().catch(() => {});
      }
      const hasVideo = !!stream?.getVideoTracks().some((track) => track.readyState === 'live');
      tile.toggleAttribute('data-novideo', !hasVideo);
      tile.classList.toggle('large', name === sharer);
      // Who speaks: a coloured frame and the word, not colour alone (WCAG 1.4.1).
      const speaks = rc.speaking(name);
      tile.classList.toggle('speaking', speaks);
      const speakingText = tile.querySelector('.tile-speaking');
      speakingText.textContent = speaks ? t('roomCall.speaking') : '';
      speakingText.hidden = !speaks;
      tile.querySelector('.tile-name').textContent = name === me ? t('rooms.you', { name }) : name;
      video.setAttribute('aria-label', name === me ? t('roomCall.yourPicture') : t('roomCall.picture', { peer: name }));
      const note = tile.querySelector('.tile-note');
      const words = name === me ? (own.muted ? t('controls.youMuted') : '')
        : rc.connectedTo(name) ? (hasVideo ? '' : t('roomCall.audioOnly')) : t('call.connecting');
      note.textContent = words;
      note.hidden = !words;
    }
    const mute = $('room-mute');
    mute.textContent = t(own.muted ? 'controls.unmute' : 'controls.mute');
    mute.classList.toggle('on', own.muted);
    mute.setAttribute('aria-pressed', String(own.muted));
    const share = $('room-share');
    share.textContent = t(own.screen ? 'controls.stopSharing' : 'controls.share');
    share.classList.toggle('on', !!own.screen);
    share.hidden = !navigator.mediaDevices?.getDisplayMedia;
    $('room-leave').textContent = t('roomCall.leave');
  }
}
