// The page: login, contacts with presence, calls, chat and statistics, plus `window.meshnodeTest`,
// the hook the browser tests drive the page through (docs/web.md).

import { identitySupport, loadIdentity } from './identity.js';
import { SignalingClient, defaultNodeURL, normalizeNodeURLs, newId } from './signaling.js';
import { Call, CallSetupError, KeyPins, ReplayCache, SETUP_TYPES, openBody, signBody } from './call.js';
import { describe } from './stats.js';
import { ChatStore } from './chatstore.js';
import { Rooms, conversationOf, showError, unreadBadge } from './rooms.js';
import { CallControls, listDevices } from './controls.js';
import { currentLanguage, formatTime, initialLanguage, setLanguage, t } from './i18n.js';
import { Ringer, askNotificationPermission, unlockAudio } from './ringer.js';
import { Devices } from './devices.js';
import { RoomCalls } from './roomcall.js';
import { RoomCallView } from './roomview.js';
import { nodePinAddress } from './forwarded.js';

const $ = (id) => document.getElementById(id);
const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}(@.+)?$/;

const app = {
  client: null,
  identity: null,
  pins: null,
  contacts: new Map(), // address → {status, key, keyWarning}
  selected: null,
  call: null,
  messages: [], // {id, from, to, text, mine, status, sent, seq}
  rooms: new Map(), // room address → {members, more, loading} (rooms.js)
  unread: new Map(), // contact or room → messages not read yet
  memberPresence: new Map(), // room members who are not contacts → status
  chatStore: null, // the chat history in IndexedDB (chatstore.js)
  seen: new Set(), // `${from} ${id}` of received chat, to drop repeats
  replays: new ReplayCache(), // call-setup messages seen within the freshness window
  refusedLogged: new Set(), // (sender, call, type) of refused call-setup messages already logged
  ringer: new Ringer(),
  callStatus: { key: 'call.idle', params: {} }, // what the call area says, in any language
  autoAccept: false,
  relayOnly: false,
  events: [],
};

const rooms = new Rooms(app, {
  renderMessages: (keepScroll) => renderMessages(keepScroll),
  renderContacts: () => renderContacts(),
  announce: (text) => announce(text),
  select: (address) => selectContact(address),
  saveMessages: (conversation) => saveMessages(conversation),
  saved: (key, fallback) => saved(key, fallback),
  save: (key, value) => save(key, value),
  log: (event, detail) => log(event, detail),
  callBadge: (room) => {
    const state = roomCalls.known.get(room);
    if (!state) return '';
    return t(roomCalls.own?.room === room ? 'roomCall.badgeYou' : 'roomCall.badge', { n: state.participants.length });
  },
});

function log(event, detail = {}) {
  app.events.push({ t: Date.now(), event, ...detail });
  if (app.events.length > 200) app.events.shift();
}

function saved(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key)) ?? fallback;
  } catch {
    return fallback;
  }
}

function save(key, value) {
  localStorage.setItem(key, JSON.stringify(value));
}

// Room calls (roomcall.js: state and pairwise calls; roomview.js: what the page shows).
const roomCalls = new RoomCalls(app, {
  newPair: (options) => new Call({ client: app.client, identity: app.identity, pins: app.pins, relayOnly: app.relayOnly, ...options }),
  render: () => {
    roomView.render();
    renderContacts();
  },
  ring: (ringing) => {
    if (app.autoAccept) {
      roomCalls.stopRinging();
      return roomCalls.startOrJoin(ringing.room).catch((error) => log('room-call', { error: String(error.message || error) }));
    }
    app.ringer.start({ title: t('roomCall.ringTitle'), body: roomView.ringText(ringing) });
    roomView.ring(ringing);
  },
  stopRing: () => {
    if (!app.call) app.ringer.stop();
    roomView.stopRing();
  },
  busy: () => !!app.call,
  log: (event, detail) => log(event, detail),
});
const roomView = new RoomCallView(roomCalls, {
  selected: () => app.selected,
  select: (address) => selectContact(address),
  busy: () => !!app.call,
  offline: () => app.client?.state !== 'online',
});

// Linking, the device list and key backups (devices.js).
const devices = new Devices({ app, login: (node, name) => login(node, name), log });

// ---- login and connection ----------------------------------------------------------------

async function login(nodeText, name) {
  if (identitySupport()) throw new Error(t(globalThis.isSecureContext && crypto.subtle ? 'login.noStorage' : 'login.insecure'));
  if (!NAME_PATTERN.test(name) || name.includes('@')) throw new Error(t('login.badName'));
  // Several URLs (a cluster's members, docs/cluster.md): the first names the node (its pins,
  // the saved chat); the client fails over to the others.
  const urls = normalizeNodeURLs(nodeText);
  const url = urls[0];
  if (app.call) await app.call.hangup('logged out').catch(() => {});
  await roomCalls.leave().catch(() => {});
  if (app.client) app.client.stop();
  forgetSession();
  app.identity = await loadIdentity(name);
  app.pins = new KeyPins(new URL(url).host);
  const client = new SignalingClient({ url, urls, identity: app.identity });
  app.client = client;
  // A client replaced by a later login or a logout says nothing to the page any more.
  client.addEventListener('state', (e) => client === app.client && connectionChanged(e.detail));
  client.addEventListener('presence', (e) => presence(e.detail));
  client.addEventListener('chat', (e) => chatReceived(e.detail));
  client.addEventListener('chat-status', (e) => chatStatus(e.detail));
  client.addEventListener('room', (e) => client === app.client && rooms.event(e.detail));
  // One at a time, in arrival order: verifying a signature is asynchronous, and an answer must
  // not overtake its offer.
  client.addEventListener('message', (e) => {
    app.inbox = (app.inbox || Promise.resolve()).then(() => message(e.detail)).catch((error) => log('refused', { reason: String(error) }));
  });
  client.addEventListener('error', (e) => log('error', e.detail));
  client.addEventListener('welcome', (e) => {
    if (client !== app.client) return;
    devices.welcomed(e.detail);
    // The node's own key (docs/protocol.md "Room calls", *Forwarded mode*), pinned on first use
    // for `@host:port`: forwarder assignments are checked against it. A changed key is not
    // taken (the old pin stays, and the node's assignments are refused).
    const nodeKey = e.detail?.nodeKey;
    if (typeof nodeKey === 'string' && nodeKey && !app.pins.check(nodePinAddress(app.pins), nodeKey)) {
      log('node-key-changed', { node: nodePinAddress(app.pins), key: nodeKey.slice(0, 12) });
    }
  });
  save('meshnode.session', { node: nodeText, name });
  for (const contact of saved(`meshnode.contacts.${name}`, [])) app.contacts.set(contact, { status: 'offline', key: null });
  rooms.restore();
  await restoreMessages(client, `${name}@${new URL(url).host}`);
  client.subscribe([...app.contacts.keys()]);
  $('me').textContent = name;
  client.start();
  renderContacts();
  return new Promise((resolve, reject) => {
    const done = (e) => {
      if (e.detail.state === 'online') resolve({ loginMs: client.loginMs, name, key: app.identity.publicKey });
      else if (e.detail.state === 'refused') reject(new Error(refusedText(e.detail.reason)));
      else return;
      client.removeEventListener('state', done);
    };
    client.addEventListener('state', done);
  });
}

async function logout() {
  // The hangup must leave before the socket closes.
  if (app.call) await app.call.hangup('logged out').catch(() => {});
  await roomCalls.leave().catch(() => {});
  if (app.client) app.client.stop();
  localStorage.removeItem('meshnode.session');
  forgetSession();
  $('workspace').hidden = true;
  $('login').hidden = false;
  $('logout').hidden = true;
  $('login-error').textContent = '';
  $('name').focus();
}

/**
 * Drops everything of the user who was logged in, so that the next one on this browser sees
 * none of it: contacts, presence, chat, the last call and its statistics.
 */
function forgetSession() {
  app.client = null;
  app.identity = null;
  app.pins = null;
  app.contacts.clear();
  app.selected = null;
  app.messages = [];
  app.seen.clear();
  app.rooms.clear();
  app.unread.clear();
  app.memberPresence.clear();
  app.chatStore = null;
  showError('');
  app.lastCall = null;
  app.lastCallStats = null;
  app.shownStats = null;
  roomCalls.reset();
  roomView.render();
  app.ringer.stop();
  devices.loggedOut();
  if ($('incoming').open) $('incoming').close();
  $('me').textContent = '';
  $('chat-peer').textContent = '';
  $('stats').replaceChildren();
  $('replaced').hidden = true;
  showCallStatus('call.idle');
  renderConnection('offline');
  renderContacts();
  renderMessages();
  rooms.renderMembers();
  renderControls(null);
}

/** The login refusal in words: `CODE: reason` from signaling.js, by its code. */
function refusedText(reason = '') {
  const code = reason.split(':')[0];
  if (code === 'name-taken') return t('login.nameTaken');
  if (code === 'bad-signature') return t('login.badSignature');
  if (code === 'revoked') return t('login.revoked');
  return t('login.refused', { reason });
}

/** The badge: the connection state in words (`reconnecting` counts down to the next try). */
function renderConnection(state = app.client?.state ?? 'offline') {
  const badge = $('connection');
  badge.dataset.state = state;
  const left = Math.max(0, (app.client?.nextAttemptAt ?? 0) - Date.now());
  badge.textContent = state === 'reconnecting' && app.client?.nextAttemptAt ? t('conn.reconnectingIn', { s: (left / 1000).toFixed(0) }) : t(`conn.${state}`);
}

/**
 * Another tab or device logged in with this name: the node moved the name there. This page
 * says so plainly and offers to take the name back (which moves it here again).
 */
function takeBack() {
  const client = app.client;
  if (!client || client.state !== 'replaced') return;
  $('replaced').hidden = true;
  client.setState('connecting', 'taking the name back');
  client.start();
}

function connectionChanged({ state, reason }) {
  log('connection', { state, reason });
  renderConnection(state);
  clearInterval(app.reconnectCountdown);
  $('replaced').hidden = state !== 'replaced';
  if (state === 'replaced') $('replaced').scrollIntoView({ block: 'nearest' });
  if (state === 'online') {
    // From the login form to the workspace: focus goes where the next step is (WCAG 2.4.3),
    // not to the body.
    const fromLogin = !$('login').hidden && $('login').contains(document.activeElement);
    $('login').hidden = true;
    $('workspace').hidden = false;
    $('logout').hidden = false;
    $('login-error').textContent = '';
    if (fromLogin || document.activeElement === document.body) $('contact-name').focus();
    // What the rooms said while this page was away: members and the newest history.
    rooms.refreshAll();
  } else if (state === 'reconnecting' || state === 'replaced') {
    // Contacts' presence is unknown while we are away.
    for (const c of app.contacts.values()) c.status = 'unknown';
    if (state === 'reconnecting') app.reconnectCountdown = setInterval(() => app.client?.state === 'reconnecting' && renderConnection(), 500);
  } else if (state === 'refused') {
    $('login-error').textContent = refusedText(reason);
    $('login').hidden = false;
    $('workspace').hidden = true;
  }
  renderContacts();
  renderMessages();
}

// ---- contacts and presence ---------------------------------------------------------------

/** Adds a contact of the user logged in; false (nothing done) when nobody is. */
function addContact(address) {
  address = address.trim();
  if (!app.identity || !address || address === app.identity.name) return false;
  if (!app.contacts.has(address) || app.contacts.get(address).stranger) {
    // A room member is followed already (no second presence comes): its presence so far.
    const member = [...app.rooms.values()].some((room) => room.members.has(address));
    app.contacts.set(address, { status: member ? rooms.status(address) : 'offline', key: null });
    saveContacts();
  }
  app.client?.subscribe([address]);
  if (!app.selected) selectContact(address);
  renderContacts();
  return true;
}

function saveContacts() {
  save(`meshnode.contacts.${app.identity.name}`, [...app.contacts].filter(([, c]) => !c.stranger).map(([address]) => address));
}

/** How many senders who are not contacts the list shows at most (the oldest go first). */
const MAX_STRANGERS = 50;

/**
 * Someone who is not a contact wrote: listed as a stranger so that the message can be read,
 * but not saved, not followed (no presence subscription) and not callable until the user adds
 * them — a message from anyone must not make them a contact.
 */
function noteStranger(address) {
  const strangers = [...app.contacts].filter(([, c]) => c.stranger).map(([a]) => a);
  if (strangers.length >= MAX_STRANGERS) app.contacts.delete(strangers[0]);
  app.contacts.set(address, { status: 'unknown', key: null, stranger: true });
  renderContacts();
}

function presence(body) {
  const contact = app.contacts.get(body.name);
  if (!contact || contact.stranger) {
    // A room member who is not a contact: its presence for the member list only.
    if ([...app.rooms.values()].some((room) => room.members.has(body.name))) {
      app.memberPresence.set(body.name, body.status);
      rooms.renderMembers();
    }
    return; // presence only of contacts this page follows
  }
  contact.status = body.status;
  if (body.key) {
    contact.key = body.key;
    contact.keyWarning = app.pins.check(body.name, body.key) ? null : 'key changed since first seen: calls are refused';
  }
  app.contacts.set(body.name, contact);
  log('presence', { name: body.name, status: body.status });
  renderContacts();
  rooms.renderMembers();
}

/** Opens the chat with a contact or a room (`#room`, `#room@host:port`); null closes it. */
function selectContact(address) {
  app.selected = address;
  rooms.markRead(address);
  renderChatTitle();
  renderContacts();
  rooms.renderMembers();
  roomView.render();
  renderMessages();
}

function renderChatTitle() {
  const address = app.selected;
  $('chat-peer').textContent = !address ? '' : address.startsWith('#') ? t('chat.inRoom', { room: address }) : t('chat.with', { peer: address });
}

/**
 * Draws the contact list. Each contact is a row: a button with the name (selects it for chat),
 * its presence in words (not only the dot's colour), and call buttons whose accessible names
 * say whom they call. A redraw keeps the keyboard focus on the same control.
 */
function renderContacts() {
  const list = $('contact-list');
  const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
  list.replaceChildren();
  for (const [address, contact] of app.contacts) {
    const item = document.createElement('li');
    item.className = 'contact' + (address === app.selected ? ' selected' : '');
    item.dataset.status = contact.status;
    item.dataset.name = address;
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.setAttribute('aria-hidden', 'true');
    const who = document.createElement('button');
    who.type = 'button';
    who.className = 'who';
    who.textContent = address;
    who.dataset.focusKey = `${address} who`;
    const unread = app.unread.get(address) || 0;
    const label = t('contacts.chatWith', { peer: address, status: t(`presence.${contact.status}`) });
    who.setAttribute('aria-label', unread ? `${label}, ${t('chat.unread', { n: unread })}` : label);
    if (address === app.selected) who.setAttribute('aria-current', 'true');
    who.onclick = () => selectContact(address);
    const status = document.createElement('span');
    status.className = 'presence';
    status.textContent = t(`presence.${contact.status}`);
    item.append(dot, who, status, unreadBadge(unread));
    if (contact.stranger) {
      // Not a contact: an Add button instead of calls.
      item.classList.add('stranger');
      const add = document.createElement('button');
      add.type = 'button';
      add.textContent = t('contacts.addStranger');
      add.setAttribute('aria-label', t('contacts.addStrangerLabel', { peer: address }));
      add.dataset.focusKey = `${address} add`;
      add.onclick = () => addContact(address);
      item.append(add);
      list.append(item);
      continue;
    }
    if (contact.keyWarning) {
      const warn = document.createElement('span');
      warn.className = 'warn';
      warn.textContent = t('contacts.keyChanged');
      item.append(warn);
    }
    const actions = document.createElement('span');
    actions.className = 'actions';
    for (const kind of ['audio', 'video', 'desktop']) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = t(`kind.${kind}`);
      button.setAttribute('aria-label', t(`kind.${kind}.label`, { peer: address }));
      button.dataset.kind = kind;
      button.dataset.focusKey = `${address} ${kind}`;
      button.disabled = contact.status !== 'online' || !!app.call || roomCalls.active || app.client?.state !== 'online';
      button.onclick = () => {
        app.returnFocus = button.dataset.focusKey;
        placeCall(address, kind).catch((error) => showCallStatus('call.failed', { error: error.message }));
      };
      actions.append(button);
    }
    item.append(actions);
    list.append(item);
  }
  if (focused) {
    const again = [...list.querySelectorAll('[data-focus-key]')].find((el) => el.dataset.focusKey === focused);
    if (again && !again.disabled) again.focus();
  }
  rooms.renderList();
}

// ---- chat ----------------------------------------------------------------------------------

function sendChat(to, text) {
  if (!app.client) throw new Error(t('call.notConnected'));
  const record = app.client.chat(to, text);
  app.messages.push({ ...record, mine: true });
  renderMessages();
  saveMessages(to);
  return record;
}

function chatStatus(record) {
  const shown = app.messages.find((m) => m.mine && m.id === record.id);
  if (shown) Object.assign(shown, { status: record.status, error: record.error });
  renderMessages();
  if (shown) saveMessages(shown.to);
}

function chatReceived(message) {
  const key = `${message.from} ${message.id}`;
  if (app.seen.has(key)) return;
  app.seen.add(key);
  const from = message.from;
  const room = message.to?.startsWith('#') ? message.to : null;
  if (room && !app.rooms.has(room)) {
    // A room this name is in (joined on another device): listed here too.
    app.rooms.set(room, { members: new Map(), more: null, loading: false });
    rooms.saveList();
  }
  if (!room && !app.contacts.has(from) && !from.startsWith('@')) noteStranger(from);
  app.messages.push({ id: message.id, from, to: message.to, text: message.body?.text ?? '', mine: false, sent: message.body?.sent, seq: message.body?.seq });
  log('chat', { from, id: message.id, room });
  const conversation = room ?? from;
  rooms.countUnread(conversation);
  renderMessages();
  renderContacts();
  saveMessages(conversation);
  const text = String(message.body?.text ?? '').slice(0, 200);
  announce(room ? t('chat.newRoomMessage', { room, peer: from, text }) : t('chat.newMessage', { peer: from, text }));
}

/** The time a message was sent, in seconds (the node's for delivered ones, the page's for one's own). */
function sentTime(m) {
  return m.sent ?? (m.sentAt ? m.sentAt / 1000 : 0);
}

/** Writes a conversation to the page's IndexedDB history (bounded there, chatstore.js). */
function saveMessages(conversation) {
  if (!app.chatStore || !conversation) return;
  app.chatStore.save(conversation, app.messages.filter((m) => conversationOf(m) === conversation).sort((a, b) => sentTime(a) - sentTime(b)));
}

/** The conversations this user had on this browser, before the node says anything new. */
async function restoreMessages(client, owner) {
  const store = await ChatStore.open(owner);
  if (client !== app.client) return;
  app.chatStore = store;
  if (!store) return;
  let conversations;
  try {
    conversations = await store.load();
  } catch (error) {
    log('chat-store', { error: String(error) });
    return;
  }
  if (client !== app.client) return;
  for (const messages of conversations.values()) {
    for (const m of messages) {
      if (!m.mine) {
        if (app.seen.has(`${m.from} ${m.id}`)) continue;
        app.seen.add(`${m.from} ${m.id}`);
      } else if (app.messages.some((known) => known.mine && known.id === m.id)) continue;
      app.messages.push({ ...m, status: m.status ?? undefined, error: m.error ?? undefined });
    }
  }
  renderMessages();
}

/** Draws the open conversation, oldest first; `keepScroll` keeps the view on the same messages (older ones came in above). */
function renderMessages(keepScroll = false) {
  const list = $('messages');
  const fromBottom = list.scrollHeight - list.scrollTop;
  list.replaceChildren();
  const peer = app.selected;
  const shown = app.messages.filter((m) => !peer || conversationOf(m) === peer).sort((a, b) => sentTime(a) - sentTime(b));
  for (const m of shown) {
    const item = document.createElement('li');
    item.className = m.mine ? 'mine' : '';
    if (m.mine) item.dataset.status = m.status;
    item.textContent = m.text;
    const meta = document.createElement('span');
    meta.className = 'meta';
    const time = formatTime(new Date((m.sent ?? m.sentAt / 1000) * 1000));
    meta.textContent = m.mine ? `${time} · ${chatStatusText(m)}` : `${m.from} · ${time}`;
    item.append(meta);
    list.append(item);
  }
  list.scrollTop = keepScroll ? list.scrollHeight - fromBottom : list.scrollHeight;
}

/**
 * A sent message's state in words. One still waiting while the name is in use elsewhere says
 * so: it leaves only if this page takes the name back.
 */
function chatStatusText(m) {
  if (m.status === 'stored') return t('chat.delivered');
  if (m.status === 'failed') return t('chat.failed', { error: m.error });
  return app.client?.state === 'replaced' ? t('chat.waitingReplaced') : t('chat.sending');
}

/**
 * Says `text` to screen readers (a polite live region, WCAG 4.1.3). Cleared first, so the same
 * words twice are said twice.
 */
function announce(text) {
  const region = $('announcer');
  region.textContent = '';
  clearTimeout(app.announceTimer);
  // Said once, then cleared: the words belong to the moment (and to the language of then).
  setTimeout(() => (region.textContent = text), 50);
  app.announceTimer = setTimeout(() => (region.textContent = ''), 10000);
}

// ---- calls ---------------------------------------------------------------------------------

/** Sets what the call area says (a message key, so that a language switch rewords it). */
function showCallStatus(key, params = {}) {
  app.callStatus = { key, params };
  $('call-status').textContent = t(key, params);
}

/** The words for a call's state (messages-*.js `call.*` and `end.*`). */
function callStatusKey(call) {
  const peer = call.peer;
  switch (call.state) {
    case 'ringing-out': return ['call.calling', { peer }];
    case 'ringing-in': return ['call.ringing', { peer }];
    case 'connecting': return ['call.connecting', {}];
    case 'connected':
      return [call.kind === 'desktop' ? `call.connected.desktop.${call.role}` : `call.connected.${call.kind}`, { peer }];
    case 'ended': {
      const why = call.detail && ['hangup-remote', 'reject-remote'].includes(call.code);
      return [`end.${call.code}${why ? '-why' : ''}`, { peer, detail: call.detail }];
    }
    default: return ['call.idle', {}];
  }
}

/** The incoming-call dialog's text for `call`. */
function incomingText(call) {
  return t(`incoming.${call.kind}`, { peer: call.peer });
}

/** Hang up, or *Cancel* while our call rings at the other side. */
function renderHangup(call) {
  const button = $('hangup');
  button.hidden = !call || call.state === 'ended' || call.state === 'ringing-in' || call.state === 'new';
  button.textContent = t(call?.state === 'ringing-out' ? 'call.cancel' : 'call.hangup');
}

function newCall(options) {
  const call = new Call({ client: app.client, identity: app.identity, pins: app.pins, relayOnly: app.relayOnly, ...options });
  const controls = new CallControls(call);
  call.controls = controls;
  app.call = call;
  const remote = $('remote-video');
  const local = $('local-video');
  call.addEventListener('state', ({ detail }) => {
    log('call', { state: detail.state, reason: detail.reason, id: call.id });
    showCallStatus(...callStatusKey(call));
    renderHangup(call);
    document.body.classList.toggle('in-call', detail.state !== 'ended');
    if (detail.state === 'ringing-in') app.ringer.start({ title: t('incoming.title'), body: incomingText(call) });
    else app.ringer.stop();
    // Keyboard focus follows the call (WCAG 2.4.3): to *Cancel* / *Hang up* when it starts
    // here, to the dialog's *Accept* when it rings, back to where it was when it ends.
    if (detail.state === 'ringing-out') $('hangup').focus();
    if (detail.state === 'connected') {
      controls.apply().catch((error) => log('controls', { error: String(error) }));
      startTimer(call);
      fillDevices();
      if (call.role === 'callee' && (document.activeElement === document.body || !document.activeElement)) $('hangup').focus();
    }
    renderControls(call);
    if (detail.state === 'ended') {
      controls.close();
      stopTimer();
      remote.srcObject = null;
      delete remote.dataset.self;
      local.srcObject = null;
      delete local.dataset.live;
      $('video-note').hidden = true;
      $('remote-note').hidden = true;
      $('quality').hidden = true;
      if ($('incoming').open) $('incoming').close();
      if (app.call === call) {
        app.lastCall = call.view();
        app.lastCallStats = call.lastStats;
        app.call = null;
      }
      renderContacts();
      renderControls(null);
      restoreFocus(call);
    }
  });
  call.addEventListener('local-stream', ({ detail }) => {
    if (call.kind === 'desktop' && call.role === 'caller') {
      // The sharer sees what it shares in the big area (the watcher sends no picture back).
      remote.srcObject = detail;
      remote.dataset.self = '';
      return;
    }
    if (detail.getVideoTracks().length) {
      local.srcObject = detail;
      local.dataset.live = '';
    }
  });
  controls.addEventListener('preview', ({ detail }) => {
    // "You": the camera, or the screen while sharing; a note instead with the camera off.
    if (detail) {
      local.srcObject = detail;
      local.dataset.live = '';
    } else {
      local.srcObject = null;
      delete local.dataset.live;
    }
  });
  controls.addEventListener('change', () => renderControls(call));
  call.addEventListener('remote-stream', ({ detail }) => {
    if (remote.dataset.self !== undefined) return;
    if (remote.srcObject !== detail) remote.srcObject = detail;
    remote.play().catch(() => {});
    if (remote.requestVideoFrameCallback) remote.requestVideoFrameCallback(() => call.firstFrameShown());
  });
  call.addEventListener('stats', ({ detail }) => {
    const list = $('stats');
    app.shownStats = detail;
    list.replaceChildren(...describe(detail, t).map((line) => Object.assign(document.createElement('li'), { textContent: line })));
    renderQuality(detail);
    noticeStill(call, detail);
  });
  renderContacts();
  return call;
}

/** After a call, focus goes back to the control that started it, else to the contact form. */
function restoreFocus(call) {
  const inCallArea = !document.activeElement || document.activeElement === document.body || $('call-panel').contains(document.activeElement) || document.activeElement.closest?.('dialog');
  if (!inCallArea) return;
  const key = call.role === 'caller' ? app.returnFocus : null;
  const back = key && [...$('contact-list').querySelectorAll('[data-focus-key]')].find((el) => el.dataset.focusKey === key);
  if (back && !back.disabled) back.focus();
  else if (!$('workspace').hidden) $('contact-name').focus();
  app.returnFocus = null;
}

/** The mute, camera and share buttons: shown in a connected call where they apply. */
function renderControls(call) {
  const connected = call?.state === 'connected';
  const c = call?.controls;
  const mute = $('mute');
  mute.hidden = !connected || !c.hasMicrophone;
  mute.textContent = t(c?.muted ? 'controls.unmute' : 'controls.mute');
  mute.classList.toggle('on', !!c?.muted);
  const camera = $('camera');
  camera.hidden = !connected || !c.hasCamera;
  camera.textContent = t(c?.cameraOff ? 'controls.cameraOn' : 'controls.cameraOff');
  camera.classList.toggle('on', !!c?.cameraOff);
  camera.disabled = !!c?.sharing;
  const share = $('share');
  share.hidden = !connected || !c.canShare;
  share.textContent = t(c?.sharing ? 'controls.stopSharing' : 'controls.share');
  share.classList.toggle('on', !!c?.sharing);
  $('devices-box').hidden = !connected || !(c.hasMicrophone || c.hasCamera);
  const note = $('video-note');
  // No call at all: a hint for a first-time user instead of an empty black box.
  const idle = !call;
  $('call-panel').querySelector('.videos').toggleAttribute('data-idle', idle);
  // The details have something to say once a call is connected, and after it (the last one's).
  $('stats-box').hidden = !connected && !(idle && app.lastCallStats);
  const words = idle ? 'call.hint' : !connected ? null : c.sharing ? 'controls.youShare' : c.cameraOff ? 'controls.yourCameraOff' : c.muted ? 'controls.youMuted' : null;
  note.hidden = !words;
  note.textContent = words ? t(words) : '';
}

/** Fills the device menus (labels are known once a camera or microphone is open). */
async function fillDevices() {
  const devices = await listDevices();
  const controls = app.call?.controls;
  const fill = (select, list, current, choice) => {
    $(choice).hidden = list.length < 1;
    select.replaceChildren(...list.map((d, i) => Object.assign(document.createElement('option'), {
      value: d.deviceId, textContent: d.label || t('controls.deviceN', { n: i + 1 }), selected: d.deviceId === current,
    })));
  };
  fill($('microphone-select'), controls?.hasMicrophone ? devices.audioinput : [], controls?.deviceTrack('audio')?.getSettings().deviceId, 'microphone-choice');
  fill($('camera-select'), controls?.hasCamera ? devices.videoinput : [], controls?.deviceTrack('video')?.getSettings().deviceId, 'camera-choice');
  fill($('speaker-select'), devices.audiooutput, $('remote-video').sinkId || 'default', 'speaker-choice');
  app.devices = devices;
}

/** Plays the call through another speaker (setSinkId, where the browser has it). */
async function useSpeaker(deviceId) {
  const video = $('remote-video');
  if (typeof video.setSinkId === 'function') await video.setSinkId(deviceId);
}

function startTimer(call) {
  stopTimer();
  const since = performance.now();
  const timer = $('call-timer');
  const tick = () => {
    const s = Math.floor((performance.now() - since) / 1000);
    timer.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    call.elapsed = s;
  };
  tick();
  timer.hidden = false;
  app.timer = setInterval(tick, 1000);
}

function stopTimer() {
  clearInterval(app.timer);
  app.timer = null;
  $('call-timer').hidden = true;
}

/**
 * The other side's picture stopped (camera off, or nothing arrives): the last frame would stay
 * on screen, frozen, so the page says so after two samples without a new frame.
 */
function noticeStill(call, summary) {
  const frames = summary.video.framesDecoded;
  // A picture was coming (frames > 0) and one is expected: not from a desktop call's sharer.
  const expectsVideo = call.kind !== 'desktop' || call.role === 'callee';
  const still = call.state === 'connected' && expectsVideo && frames > 0 && frames === call.lastFrames;
  call.stillFor = still ? (call.stillFor || 0) + 1 : 0;
  call.lastFrames = frames;
  const note = $('remote-note');
  note.hidden = call.stillFor < 2;
  note.textContent = note.hidden ? '' : t('controls.theirPictureStopped', { peer: call.peer });
}

/** The quality badge: good / fair / poor in words, colour only as a second cue. */
function renderQuality(summary) {
  const badge = $('quality');
  const level = summary?.quality?.level ?? 'unknown';
  badge.dataset.level = level;
  badge.textContent = t('quality.badge', { level: t(`quality.${level}`) });
  badge.hidden = app.call?.state !== 'connected';
}

async function placeCall(peer, kind) {
  if (app.call || roomCalls.active) throw new Error(t('call.alreadyInCall'));
  if (!app.client || app.client.state !== 'online') throw new Error(t('call.notConnected'));
  const call = newCall({ peer, id: newId('call'), kind, role: 'caller' });
  try {
    await call.start();
  } catch (error) {
    call.end('no-media', error.message);
    throw error;
  }
  return call.id;
}

/** Every message after login: call setup goes to the call it belongs to, after the checks. */
async function message(msg) {
  if (devices.message(msg)) return;
  if (msg.type === 'room-call-state') return roomCalls.stateReceived(msg);
  if (msg.type === 'timeout' && roomCalls.pair(msg.body?.call)) return roomCalls.pair(msg.body.call).handle('timeout', {});
  if (msg.type === 'timeout' && app.call && msg.body?.call === app.call.id) return app.call.handle('timeout', {});
  if (msg.type === 'error' && app.call && msg.body?.code === 'unavailable' && app.call.state === 'ringing-out') {
    return app.call.end('unavailable');
  }
  if (!SETUP_TYPES.includes(msg.type) || msg.type === 'timeout') return;
  let opened;
  try {
    opened = await openBody(msg, app.pins, app.replays);
  } catch (error) {
    log('refused', { type: msg.type, from: msg.from, code: error.code || 'bad-field', reason: error.message });
    if (error instanceof CallSetupError && app.call && app.pins.qualify(app.call.peer) === app.pins.qualify(msg.from)) showCallStatus('call.refusedMessage', { peer: msg.from, reason: error.message });
    return;
  }
  const { payload, key } = opened;
  // A pairwise call of our room call: the same binding to its other party as any call.
  const pair = roomCalls.pair(payload.call);
  if (pair) {
    if (!pair.receive(msg.type, payload, msg.from, key)) refuse(msg, `not from ${pair.peer} with the key of call ${pair.id}`);
    return;
  }
  // A call's messages come from its other party only: full address and key (docs/web.md).
  if (app.call && app.call.id === payload.call) {
    if (!app.call.receive(msg.type, payload, msg.from, key)) refuse(msg, `not from ${app.call.peer} with the key of call ${app.call.id}`);
    return;
  }
  if (msg.type === 'call' && roomCalls.incoming(msg.from, key, payload)) return;
  // A call tagged with a room call that is not ours (any more: left, or reloaded and not joined
  // again) never rings as a one-to-one call: busy, and the caller's pair ends.
  if (msg.type === 'call' && (payload.room !== undefined || payload.roomCall !== undefined)) return answerBusy(msg.from, payload.call, 'not in that room call');
  if (msg.type === 'call') return incoming(msg.from, key, payload);
  refuse(msg, `no call ${String(payload.call).slice(0, 64)} here`);
}

/** A verified message that is not acted on: logged once per (sender, call, type). */
function refuse(msg, reason) {
  const payload = (() => { try { return JSON.parse(msg.body.payload); } catch { return {}; } })();
  const entry = `${msg.from} ${payload.call} ${msg.type}`;
  if (app.refusedLogged.size >= 1024) app.refusedLogged.clear();
  if (app.refusedLogged.has(entry)) return;
  app.refusedLogged.add(entry);
  log('refused', { type: msg.type, from: msg.from, code: 'not-party', reason });
}

async function answerBusy(from, call, reason) {
  const body = await signBody(app.identity, { type: 'busy', from: app.identity.name, to: from, call, ts: Date.now() / 1000, reason });
  app.client.send('busy', from, body);
  log('busy', { from, call, reason });
}

async function incoming(from, key, payload) {
  if (app.call || roomCalls.active) return answerBusy(from, payload.call, 'in another call');
  if (!['audio', 'video', 'desktop'].includes(payload.kind)) return;
  // A caller who is not a contact stays one: being called does not make a contact.
  const call = newCall({ peer: from, peerKey: key, id: payload.call, kind: payload.kind, role: 'callee' });
  call.ring();
  if (app.autoAccept) return call.accept();
  $('incoming-text').textContent = incomingText(call);
  // By the HTML standard a dialog closed by Escape keeps its last returnValue: cleared, so that
  // Escape declines in every browser, never repeating the last call's *Accept*.
  $('incoming').returnValue = '';
  $('incoming').showModal();
  $('accept').focus();
}

// ---- the page ------------------------------------------------------------------------------

/** Rewords everything the page drew itself after a language switch. */
function retranslate() {
  $('announcer').textContent = '';
  renderConnection();
  $('call-status').textContent = t(app.callStatus.key, app.callStatus.params);
  renderHangup(app.call);
  renderControls(app.call);
  if (app.shownStats && app.call) {
    renderQuality(app.shownStats);
    if (!$('remote-note').hidden) $('remote-note').textContent = t('controls.theirPictureStopped', { peer: app.call.peer });
  }
  if (app.call) $('incoming-text').textContent = incomingText(app.call);
  renderChatTitle();
  rooms.renderMembers();
  roomView.render();
  if (app.shownStats) $('stats').replaceChildren(...describe(app.shownStats, t).map((line) => Object.assign(document.createElement('li'), { textContent: line })));
  renderContacts();
  renderMessages();
  devices.retranslate();
}

function switchLanguage(lang) {
  setLanguage(lang);
  $('language').value = currentLanguage();
  retranslate();
}

function wire() {
  setLanguage(initialLanguage(), false);
  $('language').value = currentLanguage();
  $('language').onchange = () => switchLanguage($('language').value);
  renderConnection('offline');
  showCallStatus('call.idle');
  renderControls(null);
  const session = saved('meshnode.session', null);
  $('node').value = session?.node || defaultNodeURL();
  $('name').value = session?.name || '';
  $('login-form').onsubmit = (e) => {
    e.preventDefault();
    $('login-error').textContent = '';
    // A user gesture: the moment to let calls ring later (audio) and to ask about alerts.
    unlockAudio();
    askNotificationPermission();
    login($('node').value, $('name').value.trim()).catch((error) => ($('login-error').textContent = error.message));
  };
  $('logout').onclick = logout;
  devices.wire();
  $('take-back').onclick = takeBack;
  roomView.wire((error) => showError(error.key ? t(error.key, error.params ?? { error: error.message }) : t('roomCall.failed', { error: error.message || String(error) })));
  $('contact-form').onsubmit = (e) => {
    e.preventDefault();
    addContact($('contact-name').value);
    $('contact-name').value = '';
  };
  $('room-form').onsubmit = (e) => {
    e.preventDefault();
    showError('');
    rooms.join($('room-name').value).then(() => ($('room-name').value = ''), (error) => showError(error.message));
  };
  // Scrolling back to the top of a room's messages reads the next older page (as *Earlier messages* does).
  const older = () => app.selected?.startsWith('#') && rooms.loadOlder(app.selected).catch((error) => showError(error.message || String(error.reason)));
  $('older').onclick = older;
  $('messages').addEventListener('scroll', () => $('messages').scrollTop < 8 && older());
  // Back to a tab that shows a conversation: its messages are read now.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && app.selected) {
      rooms.markRead(app.selected);
      renderContacts();
    }
  });
  $('chat-form').onsubmit = (e) => {
    e.preventDefault();
    const text = $('chat-text').value;
    if (!text || !app.selected || !app.client) return;
    sendChat(app.selected, text);
    $('chat-text').value = '';
  };
  $('hangup').onclick = () => app.call?.hangup();
  const control = (step) => () => {
    const c = app.call?.controls;
    if (c) step(c).catch((error) => showCallStatus(error.key || 'controls.failed', { error: error.message, peer: app.call?.peer }));
  };
  $('mute').onclick = control((c) => c.setMuted(!c.muted));
  $('camera').onclick = control((c) => c.setCameraOff(!c.cameraOff));
  $('share').onclick = control((c) => (c.sharing ? c.stopSharing() : c.startSharing()));
  $('microphone-select').onchange = control((c) => c.useDevice('audio', $('microphone-select').value));
  $('camera-select').onchange = control((c) => c.useDevice('video', $('camera-select').value));
  // A headset plugged in or out during a call shows up in the menus at once.
  navigator.mediaDevices?.addEventListener?.('devicechange', () => app.call?.state === 'connected' && fillDevices());
  $('speaker-select').onchange = () => useSpeaker($('speaker-select').value).catch((error) => showCallStatus('controls.failed', { error: error.message }));
  $('incoming').addEventListener('close', () => {
    const call = app.call;
    if (!call || call.state !== 'ringing-in') return;
    if ($('incoming').returnValue === 'accept') {
      call.accept().catch((error) => showCallStatus('call.cannotAccept', { error: error.message }));
      // The dialog gave focus back to where it was; the call's controls are the next step.
      $('hangup').focus();
    } else call.reject(app.rejectReason || 'rejected');
    app.rejectReason = null;
  });
  // Come back as the same person after a reload.
  if (session?.name) login(session.node, session.name).catch((error) => ($('login-error').textContent = error.message));
}

/** The hook the browser tests (Tests/Browser) drive the page through; every result is JSON. */
window.meshnodeTest = {
  login: (node, name) => login(node || defaultNodeURL(), name),
  logout,
  addContact: (name) => addContact(name),
  takeBack,
  setLanguage: (lang) => switchLanguage(lang),
  call: (peer, kind = 'video') => placeCall(peer, kind),
  accept: async () => {
    if ($('incoming').open) $('incoming').close('accept');
    else await app.call?.accept();
  },
  reject: async (reason) => {
    app.rejectReason = reason;
    if ($('incoming').open) $('incoming').close('reject');
    else await app.call?.reject(reason);
  },
  hangup: () => app.call?.hangup(),
  mute: (on = true) => app.call?.controls.setMuted(on),
  cameraOff: (off = true) => app.call?.controls.setCameraOff(off),
  share: (on = true) => (on ? app.call?.controls.startSharing() : app.call?.controls.stopSharing()),
  useDevice: (kind, deviceId) => app.call?.controls.useDevice(kind, deviceId),
  devices: () => listDevices(),
  controls: () => app.call?.controls.view() ?? null,
  setAutoAccept: (on) => {
    app.autoAccept = !!on;
  },
  setRelayOnly: (on) => {
    app.relayOnly = !!on;
  },
  chat: (to, text) => sendChat(to, text).id,
  roomCall: (room, kind = 'video') => roomCalls.startOrJoin(room, kind),
  leaveRoomCall: () => roomCalls.leave(),
  roomCallMute: (on = true) => roomCalls.setMuted(on),
  roomCallShare: (on = true) => (on ? roomCalls.startSharing() : roomCalls.stopSharing()),
  roomCalls: () => roomCalls.view(),
  // The attacker tests: the last state of a room as the node sent it, the node key pinned, and
  // a message handed to the page as if it came from the node (the same checks as the socket's).
  roomCallBody: (room) => roomCalls.known.get(room)?.body ?? null,
  nodeKey: () => app.pins?.get(nodePinAddress(app.pins)) ?? null,
  receive: (msg) => {
    app.inbox = (app.inbox || Promise.resolve()).then(() => message(msg)).catch((error) => log('refused', { reason: String(error) }));
    return app.inbox;
  },
  joinRoom: (room) => rooms.join(room),
  leaveRoom: (room) => rooms.leave(room),
  loadOlder: (room) => rooms.loadOlder(room),
  select: (address) => selectContact(address),
  state: () => ({
    name: app.identity?.name ?? null,
    key: app.identity?.publicKey ?? null,
    connection: app.client?.state ?? 'offline',
    node: app.client?.url ?? null,
    reason: app.client?.reason ?? '',
    loginMs: app.client?.loginMs ?? null,
    reconnects: app.client?.reconnects ?? 0,
    onlineSince: app.client?.onlineSince ?? null,
    iceServers: app.client?.iceServers ?? [],
    contacts: Object.fromEntries([...app.contacts].map(([n, c]) => [n, { status: c.status, key: c.key, keyWarning: c.keyWarning || null, stranger: !!c.stranger }])),
    savedContacts: saved(`meshnode.contacts.${app.identity?.name}`, []),
    call: app.call?.view() ?? null,
    incomingDialog: $('incoming').open,
    language: currentLanguage(),
    ringing: { tone: app.ringer.toneOn, notifications: app.ringer.notified, visibility: document.visibilityState },
    lastCall: app.lastCall ?? null,
    messages: app.messages.map(({ id, from, to, text, mine, status, seq }) => ({ id, from, to, text, mine, status: status ?? null, seq: seq ?? null })),
    selected: app.selected,
    rooms: Object.fromEntries([...app.rooms].map(([room, r]) => [room, { more: r.more, members: Object.fromEntries([...r.members.keys()].map((n) => [n, rooms.status(n)])) }])),
    unread: Object.fromEntries(app.unread),
  }),
  stats: () => app.call?.lastStats ?? app.lastCallStats ?? null,
  // Devices and backup (devices.js); the tests click the page for the flows and read results here.
  linkedDevices: () => ({ owner: devices.isOwner, list: devices.list, code: devices.code, request: devices.request?.key ?? null,
    requestDialog: $('device-request').open, dialog: $('devices-dialog').open }),
  backup: (passphrase) => devices.backup(passphrase, passphrase),
  restore: (text, passphrase) => devices.restore(text, passphrase),
  events: () => app.events,
};

wire();
