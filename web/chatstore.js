// The page's chat history in IndexedDB (docs/web.md "Rooms and chat history"): what a user
// saw and sent survives a reload, per node and name, and is bounded — at most
// MAX_PER_CONVERSATION messages per contact or room (the oldest go first) and
// MAX_CONVERSATIONS conversations per user (the least recently written go first).
// The node remains the record for rooms: the page asks it for a room's history at every login.

const DB_NAME = 'meshnode-chat';
const STORE = 'conversations';
export const MAX_PER_CONVERSATION = 500;
export const MAX_CONVERSATIONS = 200;

function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      const store = request.result.createObjectStore(STORE, { keyPath: ['owner', 'conversation'] });
      store.createIndex('owner', 'owner');
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** What of a message is kept: no delivery state beyond sent or failed, no transient fields. */
function kept(m) {
  return { id: m.id, from: m.from, to: m.to, text: m.text, mine: !!m.mine, sent: m.sent ?? (m.sentAt ? m.sentAt / 1000 : null),
           seq: m.seq ?? null,
           // One still sending when the page went away was not taken by the node (as far as the
           // page knows; a room's history says otherwise if it was).
           status: m.mine ? (m.status === 'stored' ? 'stored' : 'failed') : null,
           error: m.mine && m.status !== 'stored' ? (m.error || 'not confirmed by the node before the page closed') : null };
}

/** One user's conversations at one node (`owner` = `name@host:port`). */
export class ChatStore {
  constructor(db, owner) {
    this.db = db;
    this.owner = owner;
    // Writes of one conversation wait for the one before (the last write wins, in order).
    this.queue = Promise.resolve();
  }

  /** Opens the store for `owner`; null when the browser keeps none (the page then works without it). */
  static async open(owner) {
    if (!globalThis.indexedDB) return null;
    try {
      return new ChatStore(await openDatabase(), owner);
    } catch {
      return null;
    }
  }

  /** Every conversation of this owner: Map of conversation → messages (oldest first). */
  async load() {
    const tx = this.db.transaction(STORE, 'readonly');
    const rows = await done(tx.objectStore(STORE).index('owner').getAll(this.owner));
    return new Map(rows.map((row) => [row.conversation, row.messages]));
  }

  /** Keeps the newest MAX_PER_CONVERSATION of `messages` for `conversation`. */
  save(conversation, messages) {
    // Strictly increasing, so that writes within one millisecond still go oldest first.
    this.clock = Math.max(Date.now(), (this.clock || 0) + 1);
    const row = { owner: this.owner, conversation, written: this.clock, messages: messages.slice(-MAX_PER_CONVERSATION).map(kept) };
    this.queue = this.queue.then(() => this.write(row)).catch(() => {});
    return this.queue;
  }

  async write(row) {
    const tx = this.db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    store.put(row);
    const rows = await done(store.index('owner').getAll(this.owner));
    if (rows.length > MAX_CONVERSATIONS) {
      rows.sort((a, b) => a.written - b.written);
      for (const old of rows.slice(0, rows.length - MAX_CONVERSATIONS)) store.delete([old.owner, old.conversation]);
    }
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
  }

  /** Forgets a conversation (a room the user left). */
  remove(conversation) {
    this.queue = this.queue.then(async () => {
      const tx = this.db.transaction(STORE, 'readwrite');
      tx.objectStore(STORE).delete([this.owner, conversation]);
      await new Promise((resolve) => (tx.oncomplete = resolve));
    }).catch(() => {});
    return this.queue;
  }
}
