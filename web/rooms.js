// Rooms on the page (docs/web.md "Rooms and chat history"): join or create `#room`, join
// `#room@host:port` at another node, leave; a member list with presence in words; the room's
// history from the node, read in pages when the user scrolls back; unread counts per contact
// and room. The node keeps rooms and their history (docs/protocol.md "Rooms", "Room history",
// "Rooms across nodes"); the page keeps its list of rooms and what it has read.

import { t } from './i18n.js';

/** `#name` or `#name@host:port`, names as in docs/protocol.md "Addresses". */
export const ROOM_PATTERN = /^#[A-Za-z0-9_][A-Za-z0-9._-]{0,31}(@[^\s@/#]+:[0-9]{1,5})?$/;
/** Messages asked for per page of history (the node's default; at most 100). */
export const PAGE = 50;
/** Pages read at login to close the gap since the last visit, at most. */
const CATCH_UP_PAGES = 4;
/** Rooms the page lists at most (the node keeps a name in 100 rooms of its own). */
export const MAX_ROOMS = 100;
/** Conversations with an unread count kept at most (rooms, contacts and strangers). */
const MAX_UNREAD = 300;

/** What the page knows of one room. */
export function newRoom() {
  // more: null = not asked yet, true = older messages remain at the node, false = none.
  return { members: new Map(), more: null, loading: false };
}

/** The conversation a message belongs to: its room, or the other person. */
export function conversationOf(m) {
  if (m.to?.startsWith('#')) return m.to;
  return m.mine ? m.to : m.from;
}

/**
 * The room features of the page. `app` is the page's state; `ui` gives the page's own drawing
 * and saving functions: renderMessages(keepScroll), renderContacts(), announce(text),
 * select(address), saveMessages(conversation), saved(key, fallback), save(key, value), log(event, detail),
 * callBadge(room) (the words for a call running in the room, or '').
 */
export class Rooms {
  constructor(app, ui) {
    this.app = app;
    this.ui = ui;
  }

  get storageKey() {
    return `meshnode.rooms.${this.app.identity?.name}`;
  }

  get unreadKey() {
    return `meshnode.unread.${this.app.identity?.name}`;
  }

  /** After login: the rooms and unread counts this user had on this browser. */
  restore() {
    const app = this.app;
    app.rooms.clear();
    for (const room of this.ui.saved(this.storageKey, [])) if (ROOM_PATTERN.test(room)) app.rooms.set(room, newRoom());
    app.unread = new Map(Object.entries(this.ui.saved(this.unreadKey, {})));
  }

  saveList() {
    this.ui.save(this.storageKey, [...this.app.rooms.keys()]);
  }

  saveUnread() {
    this.ui.save(this.unreadKey, Object.fromEntries([...this.app.unread].filter(([, n]) => n > 0)));
  }

  /** Online (after each login): members and the newest history of every room. */
  refreshAll() {
    for (const room of this.app.rooms.keys()) {
      this.refresh(room).catch((error) => {
        this.ui.log('room-refresh', { room, error: describe(error) });
        // The node no longer counts this name as a member (it left on another device, or was
        // away for a year): the room goes from the list.
        if (error?.code === 'not-member') this.forget(room);
      });
    }
  }

  async refresh(room) {
    await this.loadMembers(room);
    await this.catchUp(room);
  }

  /** Joins (or creates) `text`; resolves once the node said so, rejects with the reason. */
  async join(text) {
    const app = this.app;
    const room = String(text || '').trim();
    if (!ROOM_PATTERN.test(room)) throw new Error(t('rooms.badName'));
    if (!app.client || app.client.state !== 'online') throw new Error(t('call.notConnected'));
    if (!app.rooms.has(room) && app.rooms.size >= MAX_ROOMS) throw new Error(t('rooms.tooMany', { n: MAX_ROOMS }));
    try {
      await app.client.request('join', '@node', { room });
    } catch (error) {
      throw new Error(t('rooms.joinFailed', { room, error: describe(error) }));
    }
    if (!app.rooms.has(room)) app.rooms.set(room, newRoom());
    this.saveList();
    this.ui.select(room);
    await this.refresh(room);
    return room;
  }

  async leave(room) {
    const app = this.app;
    try {
      await app.client.request('leave', '@node', { room });
    } catch (error) {
      // Not a member any more (the node forgot the name, or another device left): gone either way.
      if (error?.code !== 'not-member') throw new Error(t('rooms.leaveFailed', { room, error: describe(error) }));
    }
    this.forget(room);
  }

  forget(room) {
    const app = this.app;
    app.rooms.delete(room);
    app.unread.delete(room);
    app.messages = app.messages.filter((m) => conversationOf(m) !== room);
    app.chatStore?.remove(room);
    this.saveList();
    this.saveUnread();
    if (app.selected === room) this.ui.select(null);
    this.ui.renderContacts();
    this.ui.renderMessages();
  }

  async loadMembers(room) {
    const app = this.app;
    const answer = await app.client.request('members', '@node', { room });
    const state = app.rooms.get(room);
    if (!state) return;
    state.members = new Map((answer.members || []).map((m) => [m.name, { online: !!m.online }]));
    // Presence of each member in words: the node tells, for members at other nodes too.
    app.client.subscribe([...state.members.keys()].filter((name) => name !== app.identity.name));
    this.ui.renderContacts();
    if (app.selected === room) this.renderMembers();
  }

  /**
   * The newest page and, when this browser had messages of the room before, older pages while
   * all of a page is new (the gap since the last visit). A room new to this browser starts with
   * one page; scrolling back reads the rest.
   */
  async catchUp(room) {
    const known = this.app.messages.some((m) => conversationOf(m) === room);
    let before = null;
    for (let page = 0; page < (known ? CATCH_UP_PAGES : 1); page += 1) {
      const { fresh, answer } = await this.page(room, before);
      const entries = answer.messages || [];
      if (page === 0 || fresh === entries.length) this.setMore(room, !!answer.more);
      if (!answer.more || fresh < entries.length || !entries.length) return;
      before = entries[0].seq;
    }
  }

  /** Scrolling back: the page older than the oldest message shown. */
  async loadOlder(room) {
    const app = this.app;
    const state = app.rooms.get(room);
    if (!state || state.loading || state.more === false) return 0;
    const seqs = app.messages.filter((m) => conversationOf(m) === room && m.seq).map((m) => m.seq);
    state.loading = true;
    try {
      const { fresh, answer } = await this.page(room, seqs.length ? Math.min(...seqs) : null, true);
      this.setMore(room, !!answer.more);
      return fresh;
    } finally {
      state.loading = false;
    }
  }

  setMore(room, more) {
    const state = this.app.rooms.get(room);
    if (state) state.more = more;
    if (this.app.selected === room) this.renderOlder();
  }

  /** One page of history merged into the page's messages; `fresh` counts those not shown before. */
  async page(room, before, keepScroll = false) {
    const body = { room, limit: PAGE };
    if (before) body.before = before;
    const answer = await this.app.client.request('history', '@node', body);
    const fresh = this.merge(room, answer.messages || []);
    this.ui.renderMessages(keepScroll);
    return { fresh, answer };
  }

  /**
   * Adds history entries not shown yet (by sender and id; one's own by id, which also gives
   * them their seq). Entries new to this browser count as unread unless the room is open.
   */
  merge(room, entries) {
    const app = this.app;
    const me = app.identity?.name;
    let fresh = 0;
    for (const e of entries) {
      if (e.from === me) {
        const own = app.messages.find((m) => m.mine && m.id === e.id);
        if (own) {
          // The node has it: also one that the page, reloaded before the ack, marked failed.
          Object.assign(own, { seq: e.seq, status: 'stored', error: undefined });
          continue;
        }
      }
      const key = `${e.from} ${e.id}`;
      if (app.seen.has(key) || (e.from === me && app.messages.some((m) => m.mine && m.id === e.id))) continue;
      app.seen.add(key);
      app.messages.push({ id: e.id, from: e.from, to: room, text: e.text, mine: e.from === me, sent: e.sent, seq: e.seq, status: e.from === me ? 'stored' : undefined });
      fresh += 1;
      if (e.from !== me) this.countUnread(room);
    }
    if (entries.length) this.ui.saveMessages(room);
    return fresh;
  }

  /** One more unread message in `conversation`, unless the user has it open. */
  countUnread(conversation) {
    const app = this.app;
    if (app.selected === conversation && document.visibilityState === 'visible') return;
    app.unread.set(conversation, (app.unread.get(conversation) || 0) + 1);
    // Bounded: strangers come and go; the conversation that got its count first goes first.
    while (app.unread.size > MAX_UNREAD) app.unread.delete(app.unread.keys().next().value);
    this.saveUnread();
  }

  markRead(conversation) {
    if (!conversation || !this.app.unread.get(conversation)) return;
    this.app.unread.delete(conversation);
    this.saveUnread();
  }

  /** A `room` event: someone joined or left (or this user left on another device). */
  event(body) {
    const app = this.app;
    const state = app.rooms.get(body.room);
    if (!state) return;
    if (body.event === 'left' && body.member === app.identity?.name) return this.forget(body.room);
    if (body.event === 'joined') {
      state.members.set(body.member, { online: true });
      if (body.member !== app.identity?.name) app.client?.subscribe([body.member]);
    } else {
      state.members.delete(body.member);
    }
    if (app.selected === body.room) this.renderMembers();
  }

  /** A member's presence in words: from the presence the page follows, else what the node said. */
  status(name) {
    const app = this.app;
    if (name === app.identity?.name) return app.client?.state === 'online' ? 'online' : 'unknown';
    const known = app.contacts.get(name)?.status ?? app.memberPresence.get(name);
    if (known) return known;
    for (const state of app.rooms.values()) if (state.members.get(name)?.online) return 'online';
    return 'offline';
  }

  /** Draws the rooms list (in the contacts panel): a row per room with its unread count. */
  renderList() {
    const app = this.app;
    const list = document.getElementById('room-list');
    const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    list.replaceChildren();
    for (const room of app.rooms.keys()) {
      const item = document.createElement('li');
      item.className = 'contact room' + (room === app.selected ? ' selected' : '');
      item.dataset.room = room;
      const mark = document.createElement('span');
      mark.className = 'hash';
      mark.setAttribute('aria-hidden', 'true');
      mark.textContent = '#';
      const unread = app.unread.get(room) || 0;
      const who = document.createElement('button');
      who.type = 'button';
      who.className = 'who';
      who.textContent = room.slice(1);
      who.dataset.focusKey = `${room} who`;
      who.setAttribute('aria-label', unread ? t('rooms.openUnread', { room, n: unread }) : t('rooms.open', { room }));
      if (room === app.selected) who.setAttribute('aria-current', 'true');
      who.onclick = () => this.ui.select(room);
      const badge = unreadBadge(unread);
      // A call runs there: said in the list too, so that it can be seen without opening the room.
      const call = document.createElement('span');
      call.className = 'room-call-badge';
      call.textContent = this.ui.callBadge?.(room) ?? '';
      call.hidden = !call.textContent;
      const leave = document.createElement('button');
      leave.type = 'button';
      leave.className = 'leave';
      leave.textContent = t('rooms.leave');
      leave.setAttribute('aria-label', t('rooms.leaveLabel', { room }));
      leave.dataset.focusKey = `${room} leave`;
      leave.onclick = () => this.leave(room).catch((error) => showError(error.message));
      item.append(mark, who, leave, badge, call);
      list.append(item);
    }
    if (focused) [...list.querySelectorAll('[data-focus-key]')].find((el) => el.dataset.focusKey === focused)?.focus();
  }

  /** The member list of the open room, presence in words as well as colour. */
  renderMembers() {
    const app = this.app;
    const room = app.selected?.startsWith('#') ? app.selected : null;
    const box = document.getElementById('room-box');
    box.hidden = !room;
    if (!room) return;
    const state = app.rooms.get(room);
    const list = document.getElementById('room-members');
    list.setAttribute('aria-label', t('rooms.membersOf', { room }));
    document.getElementById('members-title').textContent = t('rooms.members', { n: state?.members.size ?? 0 });
    list.replaceChildren();
    for (const name of [...(state?.members.keys() ?? [])].sort()) {
      const status = this.status(name);
      const item = document.createElement('li');
      item.className = 'member';
      item.dataset.status = status;
      item.dataset.name = name;
      const dot = document.createElement('span');
      dot.className = 'dot';
      dot.setAttribute('aria-hidden', 'true');
      const who = document.createElement('span');
      who.className = 'name';
      who.textContent = name === app.identity?.name ? t('rooms.you', { name }) : name;
      const words = document.createElement('span');
      words.className = 'presence';
      words.textContent = t(`presence.${status}`);
      item.append(dot, who, words);
      list.append(item);
    }
    this.renderOlder();
  }

  /** The *Earlier messages* button: shown while the node may have older ones. */
  renderOlder() {
    const room = this.app.selected?.startsWith('#') ? this.app.selected : null;
    const button = document.getElementById('older');
    const state = room && this.app.rooms.get(room);
    button.hidden = !state || state.more === false;
    button.disabled = !!state?.loading;
  }
}

/** The unread count of a contact or room, in words (hidden from the accessible name's owner). */
export function unreadBadge(n) {
  const badge = document.createElement('span');
  badge.className = 'unread';
  badge.hidden = !n;
  badge.textContent = n ? t('chat.unread', { n }) : '';
  // The row's button says the count already.
  badge.setAttribute('aria-hidden', 'true');
  return badge;
}

export function showError(text) {
  document.getElementById('room-error').textContent = text;
}

function describe(error) {
  if (!error) return '';
  if (error instanceof Error) return error.message;
  return error.code ? `${error.code}: ${error.reason}` : String(error);
}
