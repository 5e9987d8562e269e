#!/usr/bin/env python3
"""Cluster mode end to end (docs/cluster.md): PostgreSQL and three `meshnode serve` members.

`testnet/cluster` (CI, `make test-cluster`): clients on different members see each other's
presence, chat and set up a call; then one member is killed with -9 while chat flows both ways.
Its clients (a protocol client here and the real CLI, `meshnode join` with three --node URLs)
must be logged in at another member within 5 s, and every message a member acknowledged before
the kill must reach its recipient: zero lost. Then an attacker floods a fourth member while
PostgreSQL is held slow: at most `--store-write-queue` writes wait, the rest get `store-busy`.
Then the web page in Chromium with two members' URLs fails over when its member is killed.
Last, room calls across members (`room_calls`): three CLIs on three members in one call, a
non-member refused, a dead host's call gone within seconds (the asking member reaps a host
with no database session), and a CLI given one member's URL failing over to one it learnt from
`welcome` (`--only room-calls` runs only this part). Last, a forwarded room call across members
(`--only room-calls-forwarded`): three CLIs at three members through the host's forwarder;
the page in Chromium at one member with CLIs at two others in a forwarded call (`--only
forwarded-page`); and a participant whose member is killed restarting ICE with the host's
forwarder through the member it logged in at (`--only forwarded-failover`, root and nftables).
`testnet/cluster --serve` only starts the cluster
(`make cluster`) and waits for Ctrl-C.

Runs as root (CI: PostgreSQL as the `postgres` user) or as a normal user; needs Debian's
postgresql (`make test-deps`).
"""
import argparse
import glob
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tests", "Conformance"))
import conformance  # noqa: E402  (the protocol client of the conformance suite)

RECONNECT_LIMIT = 5.0  # docs/protocol.md "Liveness": clients reconnect within 5 s
MESSAGES = 150  # chat sent each way around the kill


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A private PostgreSQL instance in a temporary directory on a free loopback port."""

    def __init__(self, workdir):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            raise SystemExit("cluster: PostgreSQL is not installed (apt-get install -y postgresql; make test-deps)")
        self.bin = bins[-1]
        self.dir = os.path.join(workdir, "pg")
        self.port = free_port()
        self.user = "meshnode"
        os.makedirs(self.dir)
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            # initdb refuses to run as root: the data directory belongs to the postgres user.
            os.chmod(workdir, 0o755)
            shutil.chown(self.dir, "postgres", "postgres")
        self.run("initdb", "-D", self.dir + "/data", "-A", "trust", "-U", self.user, "--no-sync")
        self.run("pg_ctl", "-D", self.dir + "/data", "-l", self.dir + "/log", "-w", "start",
                 "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200")
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "meshnode")
        self.url = f"postgres://{self.user}@127.0.0.1:{self.port}/meshnode"

    def command(self, tool, *args):
        command = [os.path.join(self.bin, tool), *args]
        return ["runuser", "-u", "postgres", "--", *command] if self.as_postgres else command

    def run(self, tool, *args):
        subprocess.run(self.command(tool, *args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")

    def stop(self):
        try:
            self.run("pg_ctl", "-D", self.dir + "/data", "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass


class Member:
    """One `meshnode serve --cluster … --member NAME` process."""

    def __init__(self, binary, name, cluster_url, workdir, node_key, extra=(), http=None):
        self.name = name
        self.http = http or free_port()
        self.url = f"ws://127.0.0.1:{self.http}/ws"
        data = os.path.join(workdir, name)
        os.makedirs(data)
        self.log = open(os.path.join(workdir, name + ".log"), "w")
        self.process = subprocess.Popen(
            [binary, "serve", "--cluster", cluster_url, "--member", name, "--bind", "127.0.0.1",
             "--http-port", str(self.http), "--stun-port", str(free_port()), "--tls-port", str(free_port()),
             "--data-dir", data, "--node-key", node_key, *extra],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"cluster: member {self.name} exited with {self.process.returncode}; see its log")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.http}/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"cluster: member {self.name} not ready within {timeout} s")

    def kill(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


class Suite:
    """What conformance.Client needs of its suite."""

    def __init__(self, url):
        self.target = conformance.Target(url)
        self.verbose = False


class Peer:
    """A protocol client with failover: logs in at the first member that answers, in order."""

    def __init__(self, name, urls):
        self.name, self.urls, self.key = name, urls, conformance.Key()
        self.client = None
        self.received = {}  # chat id -> text, from the other peer
        self.acked = set()  # ids of chat the node acknowledged

    def connect(self, start=0, deadline=None):
        deadline = deadline or time.monotonic() + RECONNECT_LIMIT * 2
        index = start
        while time.monotonic() < deadline:
            url = self.urls[index % len(self.urls)]
            try:
                client = conformance.Client(Suite(url))
                client.login(self.name, self.key)
                self.client = client
                self.url = url
                return url
            except (conformance.Closed, conformance.Timeout, OSError):
                index += 1
                time.sleep(0.05)
        raise AssertionError(f"{self.name} could not log in at any member")

    def handle(self, message):
        """Records chat (and acknowledges it, as a client must) and acks of own chat."""
        if message["type"] == "chat":
            self.received[message["id"]] = message["body"]["text"]
            self.client.send("ack", {"of": message["id"], "sender": message["from"]})
        elif message["type"] == "ack" and message["body"].get("status") in ("ok", "duplicate"):
            self.acked.add(message["body"]["of"])

    def pump(self, seconds):
        """Reads whatever arrives for `seconds`; returns False when the connection is gone."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.handle(self.client.next(timeout=max(0.01, deadline - time.monotonic())))
            except conformance.Timeout:
                return True
            except (conformance.Closed, OSError):
                return False
        return True


def expect(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"  ok  {what}")


class CLIPeer:
    """The real CLI: `meshnode join --json` with every member's URL (--node, repeatable)."""

    def __init__(self, binary, name, urls, workdir):
        identity = os.path.join(workdir, name + ".identity")
        subprocess.run([binary, "keygen", "--identity", identity], check=True, stdout=subprocess.DEVNULL)
        args = [binary, "join", "--json", "--name", name, "--identity", identity,
                "--known-peers", os.path.join(workdir, name + ".pins")]
        for url in urls:
            args += ["--node", url]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            try:
                self.events.put((time.monotonic(), json.loads(line)))
            except ValueError:
                pass

    def wait(self, event, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                at, fields = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if fields.get("event") == event:
                return at, fields
        raise AssertionError(f"the CLI printed no {event} within {timeout} s")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def scenario(binary, members, workdir):
    urls = [m.url for m in members]
    start = time.monotonic()
    alice = Peer("alice", urls)
    bob = Peer("bob", urls[1:] + urls[:1])
    alice.connect(0)
    bob.connect(0)
    expect(alice.url == members[0].url and bob.url == members[1].url, "alice is at member m1, bob at m2")

    # Presence across members.
    alice.client.send("subscribe", {"names": ["bob"]})
    # The current status, then every change: bob's login at m2 may reach m1 just after.
    status = alice.client.next(lambda m: m["type"] == "presence" and m["body"]["name"] == "bob" and m["body"]["status"] == "online",
                               what="presence online of bob")
    expect(status["body"]["key"] == bob.key.public,
           "alice (m1) sees bob (m2) online, with his key from the shared pins")

    # Chat across members, both ways.
    id_ = alice.client.send("chat", {"text": "hello from m1"}, to="bob")
    got = bob.client.next(lambda m: m["type"] == "chat")
    expect(got["id"] == id_ and got["from"] == "alice" and got["body"]["text"] == "hello from m1",
           "bob (m2) receives alice's chat sent at m1")
    bob.client.send("ack", {"of": id_, "sender": "alice"})

    # A room: membership in the shared store, its chat to a member online at another member.
    for peer in (alice, bob):
        answer = peer.client.reply(peer.client.send("join", {"room": "#ops"}))
        expect(answer["type"] == "ack", f"{peer.name} joins #ops at {peer.url.split('/')[2]}")
    id_ = alice.client.send("chat", {"text": "to the room"}, to="#ops")
    got = bob.client.next(lambda m: m["type"] == "chat" and m["to"] == "#ops", what="room chat")
    expect(got["id"] == id_ and got["body"]["text"] == "to the room", "bob (m2) receives alice's #ops message posted at m1")
    bob.client.send("ack", {"of": id_, "sender": "alice"})

    # Call setup across members: the callee's member must know the call rings there.
    call = uuid.uuid4().hex
    alice.client.send("call", conformance.signed(alice.key, "call", "alice", "bob", call, kind="audio"), to="bob")
    ring = bob.client.next(lambda m: m["type"] == "call")
    expect(json.loads(ring["body"]["payload"])["call"] == call, "bob (m2) is rung by alice's call placed at m1")
    accept_id = bob.client.send("accept", conformance.signed(bob.key, "accept", "bob", "alice", call), to="alice")
    answer = bob.client.reply(accept_id)
    expect(answer["type"] == "ack", f"m2 takes bob's accept of a call that rings from m1 ({answer['type']})")
    accepted = alice.client.next(lambda m: m["type"] == "accept")
    expect(json.loads(accepted["body"]["payload"])["call"] == call, "alice (m1) gets bob's accept from m2")

    # The CLI at m1 with all three URLs.
    carol = CLIPeer(binary, "carol", urls, workdir)
    carol.wait("connected", 10)

    # Chat both ways while m1 is killed half-way.
    sent_by_alice, sent_by_bob = [], []
    for i in range(MESSAGES):
        sent_by_alice.append(alice.client.send("chat", {"text": f"a{i}"}, to="bob"))
        sent_by_bob.append(bob.client.send("chat", {"text": f"b{i}"}, to="alice"))
        if i % 10 == 9:
            alice.pump(0.02)
            bob.pump(0.02)
        if i == MESSAGES // 2:
            alice.pump(0.2)
            bob.pump(0.2)
            killed = time.monotonic()
            members[0].kill()
            print(f"      killed m1 (kill -9) with {len(alice.acked)} of alice's and {len(bob.acked)} of bob's messages acknowledged")
            break
    acked_alice_before = set(alice.acked)
    acked_bob_before = set(bob.acked)
    alive = alice.pump(3)
    expect(not alive, "alice's connection to m1 is gone")
    # The failover of docs/cluster.md: the next member, at once.
    alice.connect(1, deadline=killed + RECONNECT_LIMIT)
    reconnect = time.monotonic() - killed
    expect(reconnect < RECONNECT_LIMIT, f"alice is logged in at {alice.url.split('/')[2]} {reconnect:.2f} s after the kill (limit {RECONNECT_LIMIT} s)")
    at, _ = carol.wait("reconnected", RECONNECT_LIMIT * 2)
    expect(at - killed < RECONNECT_LIMIT, f"the CLI (meshnode join, three --node) is logged in again {at - killed:.2f} s after the kill")

    # The rest of the messages, and alice resends what m1 had not acknowledged (same ids).
    for i in range(MESSAGES // 2 + 1, MESSAGES):
        sent_by_alice.append(alice.client.send("chat", {"text": f"a{i}"}, to="bob"))
        sent_by_bob.append(bob.client.send("chat", {"text": f"b{i}"}, to="alice"))
    for id_ in sent_by_alice[:MESSAGES // 2 + 1]:
        if id_ not in acked_alice_before:
            alice.client.send("chat", {"text": "resent"}, to="bob", id_=id_)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (len(bob.received) < len(sent_by_alice) or len(alice.received) < len(sent_by_bob)):
        alice.pump(0.1)
        bob.pump(0.1)
    lost_to_bob = [i for i in acked_alice_before if i not in bob.received]
    lost_to_alice = [i for i in acked_bob_before if i not in alice.received]
    expect(not lost_to_bob and not lost_to_alice,
           f"zero lost: {len(acked_alice_before)} + {len(acked_bob_before)} messages acknowledged before the kill, all delivered")
    expect(len(bob.received) >= len(sent_by_alice) and len(alice.received) >= len(sent_by_bob),
           f"every message delivered after the failover too ({len(bob.received)}/{len(sent_by_alice)}, {len(alice.received)}/{len(sent_by_bob)})")
    carol.stop()
    print(f"cluster: passed in {time.monotonic() - start:.1f} s")


def flood(binary, postgres, cluster_workdir, node_key):
    """An attacker floods a member with chat while PostgreSQL is slow: the member keeps at most
    `--store-write-queue` writes waiting and refuses the rest at once with `store-busy` (nothing
    stored, nothing delivered); the waiting ones are acked and delivered once PostgreSQL answers.
    PostgreSQL is made slow for certain by a session that holds the `messages` table locked."""
    limit, flooders = 4, 10
    m4 = Member(binary, "m4", postgres.url, cluster_workdir, node_key, extra=("--store-write-queue", str(limit)))
    try:
        m4.wait_ready()
        dora = Peer("dora", [m4.url])
        dora.connect(0)
        lock = subprocess.Popen(postgres.command("psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", postgres.user,
                                                 "-X", "-q", "-A", "-t", "meshnode"),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        lock.stdin.write("BEGIN; LOCK TABLE messages IN EXCLUSIVE MODE; SELECT 'locked';\n")
        lock.stdin.flush()
        expect(lock.stdout.readline().strip() == "locked", "a PostgreSQL session holds the messages table locked")
        peers = [Peer(f"flood{i}", [m4.url]) for i in range(flooders)]
        ids = {}
        for peer in peers:
            peer.connect(0)
            ids[peer.name] = peer.client.send("chat", {"text": peer.name}, to="dora")
        answers = {}
        for peer in peers:
            try:
                answers[peer.name] = peer.client.reply(ids[peer.name], timeout=1.5)
            except conformance.Timeout:
                answers[peer.name] = None  # still waiting for the locked table
        busy = [n for n, a in answers.items() if a and a["type"] == "error" and a["body"].get("code") == "store-busy"]
        waiting = [n for n, a in answers.items() if a is None]
        expect(len(busy) == flooders - limit and len(waiting) == limit,
               f"{len(busy)} of {flooders} chats refused at once with store-busy, {len(waiting)} wait (queue {limit})")
        lock.stdin.write("COMMIT;\n")
        lock.stdin.close()
        lock.wait(10)
        acked = [n for n in waiting if next(p for p in peers if p.name == n).client.reply(ids[n], timeout=10)["type"] == "ack"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(dora.received) < len(acked):
            dora.pump(0.1)
        dora.pump(0.5)
        expect(len(acked) == limit and sorted(dora.received.values()) == sorted(acked),
               f"the {limit} waiting chats are acked and delivered once PostgreSQL answers; the refused ones are not delivered")
    finally:
        m4.kill()


def page_failover(binary, postgres, workdir, node_key):
    """The page given one member's URL (docs/web.md "Clusters"): p1 and p2 run with
    --member-url, so p1's welcome names both; served by p1 and logged in there with p1's URL
    only, the page must be logged in at p2 within 5 s of p1's kill -9, and chat it sends after
    the kill must reach a client at p2 (and chat to it, reach it)."""
    sys.path.insert(0, os.path.join(ROOT, "Tests", "Browser"))
    import meshnode_browser as browser  # noqa: E402  (selenium and Chromium: make test-deps)
    # The page of one member opens /ws at another: each member allows the members' page
    # origins (docs/cluster.md "Clients").
    ports = [free_port(), free_port()]
    origins = [arg for port in ports for arg in ("--allow-origin", f"http://127.0.0.1:{port}")]
    urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
    p1 = Member(binary, "p1", postgres.url, workdir, node_key, extra=[*origins, "--member-url", urls[0]], http=ports[0])
    p2 = Member(binary, "p2", postgres.url, workdir, node_key, extra=[*origins, "--member-url", urls[1]], http=ports[1])
    page = None
    try:
        p1.wait_ready()
        p2.wait_ready()
        # p1 learns p2's URL with its next heartbeat (1 s): wait until its welcome names both.
        deadline, probe_key = time.monotonic() + 15, conformance.Key()
        while True:
            probe = conformance.Client(Suite(p1.url))
            members = probe.login("probe", probe_key)["body"].get("members") or []
            probe.close()
            if p1.url in members and p2.url in members or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        expect(p1.url in members and p2.url in members, f"p1's welcome names both members ({members})")
        bob = Peer("bobp", [p2.url])
        bob.connect(0)
        page = browser.Page(f"http://127.0.0.1:{p1.http}/", "pat")
        page.login("pat", p1.url)
        state = page.state()
        expect(state["connection"] == "online" and state["node"] == p1.url,
               f"the page (served by p1) given p1's URL only logs in there ({state['node']})")
        page.hook("chat", "bobp", "before the kill")
        got = bob.client.next(lambda m: m["type"] == "chat" and m["from"] == "pat", what="the page's chat")
        bob.client.send("ack", {"of": got["id"], "sender": "pat"})
        expect(got["body"]["text"] == "before the kill", "bobp (p2) receives the page's chat sent at p1")
        killed = time.monotonic()
        p1.kill()
        state = page.wait_state("logged in at p2", lambda s: s if s["connection"] == "online" and s["node"] == p2.url else None,
                                timeout=RECONNECT_LIMIT * 3)
        took = time.monotonic() - killed
        expect(took < RECONNECT_LIMIT, f"the page is logged in at p2 {took:.2f} s after p1's kill -9 (limit {RECONNECT_LIMIT} s)")
        sent = page.hook("chat", "bobp", "after the kill")
        got = bob.client.next(lambda m: m["type"] == "chat" and m["from"] == "pat", what="the page's chat after the kill")
        bob.client.send("ack", {"of": got["id"], "sender": "pat"})
        expect(got["id"] == sent and got["body"]["text"] == "after the kill", "chat the page sends after the failover reaches bobp")
        reply = bob.client.send("chat", {"text": "welcome to p2"}, to="pat")
        page.wait_state("bobp's chat", lambda s: any(m["id"] == reply and not m["mine"] for m in s["messages"]))
        expect(True, "the page receives chat at its new member")
    finally:
        if page:
            page.close()
        p1.kill()
        p2.kill()


def signed_room_call(key, action, from_, room, call, kind=None):
    """A signed `room-call` request body (docs/protocol.md "Room calls")."""
    payload = {"action": action, "from": from_, "room": room, "call": call, "ts": time.time()}
    if kind:
        payload["kind"] = kind
    text = json.dumps(payload, separators=(",", ":"))
    return {"payload": text, "key": key.public, "sig": key.sign("meshnode.v1 room-call\n" + text)}


class RoomWatcher(Peer):
    """A protocol client in the room that records every `room-call-state` it is told."""

    def __init__(self, name, urls):
        super().__init__(name, urls)
        self.states = []
        self.last_ping = time.monotonic()

    def seen(self, message):
        if message["type"] == "room-call-state":
            self.states.append(message["body"])
        return False

    def next(self, match, timeout, what):
        """The next message that matches, recording states on the way (and pinging the node)."""
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() - self.last_ping > 5:
                self.last_ping = time.monotonic()
                self.client.send("ping", {})
            remaining = min(1.0, deadline - time.monotonic())
            if remaining <= 0:
                raise conformance.Timeout(f"no {what} within {timeout} s")
            try:
                return self.client.next(lambda m: self.seen(m) or match(m), remaining, what)
            except conformance.Timeout:
                # The client's own message names the last slice (up to 1 s), not this wait's limit.
                if time.monotonic() >= deadline:
                    raise conformance.Timeout(f"no {what} within {timeout:g} s") from None

    def state(self, event, member=None, timeout=30):
        """The first state (already seen or coming) with `event` (by `member`)."""
        def wanted(body):
            return body["event"] == event and (member is None or body["member"] == member)
        what = f"room-call-state {event}" + (f" of {member}" if member else "")
        deadline = time.monotonic() + timeout
        while True:
            found = [b for b in self.states if wanted(b)]
            if found:
                return found[0]
            try:
                self.next(lambda m: m["type"] == "room-call-state" and wanted(m["body"]), max(0.01, deadline - time.monotonic()), what)
            except conformance.Timeout:
                # next() knows only what was left of this wait: report the whole of it.
                raise conformance.Timeout(f"no {what} within {timeout:g} s") from None

    def request(self, action, room, call, kind=None, timeout=10):
        id_ = self.client.send("room-call", signed_room_call(self.key, action, self.name, room, call, kind), to=room)
        return self.next(lambda m: m["type"] in ("ack", "error") and m["body"].get("of") == id_, timeout, f"answer to room-call {action}")


class RoomCaller:
    """The real CLI in a room call: `meshnode call '#ROOM' --json` at one member."""

    def __init__(self, binary, name, url, workdir, duration, room=None, extra=()):
        identity = os.path.join(workdir, name + ".identity")
        subprocess.run([binary, "keygen", "--identity", identity], check=True, stdout=subprocess.DEVNULL)
        self.name = name
        self.log = open(os.path.join(workdir, name + ".log"), "w")
        self.process = subprocess.Popen(
            [binary, "call", room or ROOM, "--json", "--name", name, "--identity", identity, "--node", url,
             "--known-peers", os.path.join(workdir, name + ".pins"), "--duration", str(duration),
             "--source", "pattern:192x128@10", "--source", "tone", "--ice-address", "127.0.0.1", *extra],
            stdout=subprocess.PIPE, stderr=self.log, text=True)

    def reports(self, timeout):
        out, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, [json.loads(line) for line in out.splitlines() if line.startswith("{")]


ROOM = "#team"


def watch_until_ended(watcher, callers, seconds):
    """Keeps the watcher reading (and pinging) until every caller's CLI ended, at most `seconds`."""
    deadline = time.monotonic() + seconds
    while any(c.process.poll() is None for c in callers) and time.monotonic() < deadline:
        try:
            watcher.next(lambda m: False, 1, "nothing")
        except conformance.Timeout:
            pass


def room_calls(binary, postgres, workdir, node_key):
    """Room calls across members (docs/cluster.md "Room calls across members"): r1, r2, r3 with
    --member-url. The real CLI starts a call of #team at r1; a second joins it at r2, a third
    at r3 later; each must decode the others' test pattern, and a room member at r2 (a
    protocol client) hears every state up to `ended`. A non-member's start and join are refused
    at its own member. Then a call hosted by r1 when r1 is killed with -9 is gone (every join
    is answered, `unavailable` then `forbidden`; a start at r2 takes the room) within 6 s, and
    a CLI given only r1's URL logs in again at another member that r1's welcome named."""
    ports = [free_port() for _ in range(3)]
    urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
    started = time.monotonic()
    members = [Member(binary, f"r{i + 1}", postgres.url, workdir, node_key, extra=["--member-url", urls[i]], http=ports[i])
               for i in range(3)]
    callers, joiner = [], None
    try:
        for member in members:
            member.wait_ready()
        watcher = RoomWatcher("rwatch", [urls[1]])
        watcher.connect(0)
        expect(watcher.client.reply(watcher.client.send("join", {"room": ROOM}))["type"] == "ack", f"rwatch joins {ROOM} at r2")

        callers.append(RoomCaller(binary, "ru1", urls[0], workdir, 15))
        begun = watcher.state("started", "ru1")
        call = begun["call"]
        expect(True, f"rwatch (r2) is rung for the call ru1 started at r1 ({call[:8]})")

        # The attacker: a logged-in name at r3 that is not a member of the room.
        mallory = RoomWatcher("rmallory", [urls[2]])
        mallory.connect(0)
        for action in ("join", "start"):
            answer = mallory.request(action, ROOM, call if action == "join" else uuid.uuid4().hex, kind="video")
            expect(answer["type"] == "error" and answer["body"]["code"] == "not-member",
                   f"a non-member's {action} at r3 is refused not-member ({answer['type']} {answer['body'].get('code')})")

        callers.append(RoomCaller(binary, "ru2", urls[1], workdir, 15))
        watcher.state("joined", "ru2", timeout=40)
        expect(True, "ru2 joins at r2 the call hosted by r1")
        callers.append(RoomCaller(binary, "ru3", urls[2], workdir, 15))
        joined = watcher.state("joined", "ru3", timeout=40)
        expect(sorted(joined["addresses"]) == ["ru1", "ru2", "ru3"], f"ru3 joins later at r3: three participants ({joined['addresses']})")
        # The watcher keeps reading (and pinging) while the calls run.
        watch_until_ended(watcher, callers, 120)
        for caller in callers:
            code, reports = caller.reports(timeout=10)
            video = {r["to"]: sum(s.get("receivedFrames", 0) for s in r["streams"] if s["kind"] == "video") for r in reports}
            others = sorted(c.name for c in callers if c is not caller)
            last_ok = {r["to"]: r["ok"] for r in reports}  # judged by the last call with each, as the CLI does
            expect(code == 0 and sorted(video) == others and all(video[o] > 0 for o in others) and all(last_ok.values()),
                   f"{caller.name} decodes the others' test pattern ({video}, exit {code})")
        # Each leaves at the end of its run; the last one's leave ends the call.
        ended = watcher.state("ended", timeout=30)
        leavers = {b["member"] for b in watcher.states if b["event"] == "left" and b["call"] == call} | {ended["member"]}
        expect(ended["call"] == call and leavers == {"ru1", "ru2", "ru3"},
               f"rwatch (r2) hears each leave and the end of the call when the last ({ended['member']}) leaves")

        # The CLI given only r1's URL learns the others from r1's welcome (r1 reads the
        # members' URLs with each heartbeat: wait until it names all three).
        deadline, probe_key = time.monotonic() + 15, conformance.Key()
        while True:
            probe = conformance.Client(Suite(urls[0]))
            listed = probe.login("rprobe", probe_key)["body"].get("members") or []
            probe.close()
            if all(url in listed for url in urls) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        expect(all(url in listed for url in urls), "r1's welcome names the three members")
        joiner = CLIPeer(binary, "ru4", urls[:1], workdir)
        joiner.wait("connected", 10)

        # A call hosted by r1, then r1 dies.
        host = RoomWatcher("rhost", [urls[0]])
        host.connect(0)
        host.client.reply(host.client.send("join", {"room": ROOM}))
        ghost = uuid.uuid4().hex
        answer = host.request("start", ROOM, ghost, kind="audio")
        expect(answer["type"] == "ack", f"rhost starts a call at r1 ({answer['type']})")
        watcher.state("started", "rhost")
        killed = time.monotonic()
        members[0].kill()
        at, _ = joiner.wait("reconnected", RECONNECT_LIMIT * 3)
        expect(at - killed < RECONNECT_LIMIT, f"the CLI given only r1's URL is logged in at another member {at - killed:.2f} s after r1's kill -9")
        # r1 holds no session with PostgreSQL any more: a request for its call is refused
        # `unavailable` at once (not handed to it), and two heartbeats after its last one the
        # member asked reaps it (not the 10 s reaper): then the call is gone.
        answer, answers = None, []
        while time.monotonic() - killed < 30:
            try:
                answer = watcher.request("join", ROOM, ghost, timeout=2)
            except conformance.Timeout:
                answers.append("no answer")
                continue
            answers.append(answer["body"].get("code", answer["type"]))
            if answers[-1] != "unavailable":
                break
            time.sleep(0.2)
        gone = time.monotonic() - killed
        expect(answer is not None and answers[-1] == "forbidden" and "no answer" not in answers and gone < 6,
               f"the call of the killed host is gone {gone:.1f} s after the kill: a join is refused, every request answered"
               f" ({answers[0]} ×{answers.count(answers[0])} first)")
        answer = watcher.request("start", ROOM, uuid.uuid4().hex, kind="audio")
        expect(answer["type"] == "ack", f"a start at r2 takes the room ({answer['type']} {answer['body'].get('code')})")
        print(f"cluster room calls: passed in {time.monotonic() - started:.1f} s")
    except conformance.Timeout as error:
        raise AssertionError(f"room calls: {error}")
    finally:
        for caller in callers:
            if caller.process.poll() is None:
                caller.process.kill()
        if joiner:
            joiner.stop()
        for member in members:
            member.kill()


FORWARDED_ROOM = "#fwd"


def room_calls_forwarded(binary, postgres, workdir, node_key):
    """A forwarded room call across members (docs/cluster.md "Forwarded calls across members"):
    f1, f2, f3 run `--forwarder --room-call-mesh-limit 2`. The real CLI starts a call of #fwd
    at f1 (its host), a second joins at f2, a third at f3: the third join moves the call to
    f1's forwarder. Each CLI must decode both others' test pattern through that forwarder (its
    JSON report of the call to `forwarder` lists what it decoded of each sender). A room
    member at f2 that is not in the call hears the signed assignment and is refused when it
    calls the forwarder."""
    ports = [free_port() for _ in range(3)]
    urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
    started = time.monotonic()
    members = [Member(binary, f"f{i + 1}", postgres.url, workdir, node_key,
                      extra=["--member-url", urls[i], "--forwarder", "--room-call-mesh-limit", "2"], http=ports[i])
               for i in range(3)]
    callers = []
    try:
        for member in members:
            member.wait_ready()
        watcher = RoomWatcher("fwatch", [urls[1]])
        watcher.connect(0)
        expect(watcher.client.reply(watcher.client.send("join", {"room": FORWARDED_ROOM}))["type"] == "ack",
               f"fwatch joins {FORWARDED_ROOM} at f2")
        # Each leaves once its call to the forwarder decoded 10 frames of both others' streams.
        goal = ["--until-decoded", "10", "--senders", "2"]
        names = ["fu1", "fu2", "fu3"]
        callers.append(RoomCaller(binary, names[0], urls[0], workdir, 30, room=FORWARDED_ROOM, extra=goal))
        call = watcher.state("started", names[0])["call"]
        callers.append(RoomCaller(binary, names[1], urls[1], workdir, 30, room=FORWARDED_ROOM, extra=goal))
        watcher.state("joined", names[1], timeout=40)
        callers.append(RoomCaller(binary, names[2], urls[2], workdir, 30, room=FORWARDED_ROOM, extra=goal))
        joined = watcher.state("joined", names[2], timeout=40)
        expect(joined["call"] == call and joined.get("forwarder") is not None and joined["limit"] == 20,
               f"the third join (fu3 at f3) moves the call hosted by f1 to the forwarder (limit {joined['limit']})")
        assignment = json.loads(joined["forwarder"]["payload"])
        expect(assignment["forwarder"] == "forwarder" and assignment["key"] == joined["forwarder"]["key"],
               "the assignment names the host's forwarder under the node key")

        # The attacker: a member of the room at f2 that is not in the call calls the forwarder.
        body = conformance.signed(watcher.key, "call", watcher.name, "forwarder", "f-mallory", kind="video",
                                  room=FORWARDED_ROOM, roomCall=call)
        id_ = watcher.client.send("call", body, to="forwarder")
        answer = watcher.next(lambda m: m["type"] in ("ack", "error") and m["body"].get("of") == id_, 10, "answer to the call")
        code = answer["body"].get("code", answer["type"])
        expect(code == "forbidden", f"a room member not in the call is refused when it calls the forwarder ({code})")

        # A participant at f2 leaves and at once calls the forwarder: f2 still lists it (the
        # host's `left` has not come back yet) and hands the call on; the host, which took the
        # leave first (one member's frames reach another in order), drops it: no answer from
        # the forwarder.
        leaver = RoomWatcher("fleaver", [urls[1]])
        leaver.connect(0)
        expect(leaver.client.reply(leaver.client.send("join", {"room": FORWARDED_ROOM}))["type"] == "ack", "fleaver joins the room at f2")
        answer = leaver.request("join", FORWARDED_ROOM, call)
        expect(answer["type"] == "ack", f"fleaver joins the forwarded call at f2 ({answer['type']} {answer['body'].get('code')})")
        leaver.client.send("room-call", signed_room_call(leaver.key, "leave", leaver.name, FORWARDED_ROOM, call), to=FORWARDED_ROOM)
        id_ = leaver.client.send("call", conformance.signed(leaver.key, "call", leaver.name, "forwarder", "f-leaver", kind="video",
                                                            room=FORWARDED_ROOM, roomCall=call), to="forwarder")
        heard, until = [], time.monotonic() + 6
        while time.monotonic() < until:
            try:
                heard.append(leaver.next(lambda m: True, max(0.01, until - time.monotonic()), "anything"))
            except conformance.Timeout:
                break
        first = next((m for m in heard if m["type"] in ("ack", "error") and m["body"].get("of") == id_), None)
        from_forwarder = [m["type"] for m in heard if m.get("from") == "forwarder"]
        path = "f2 let it through to the host" if first and first["type"] == "ack" else f"f2 refused it ({first and first['body'].get('code')})"
        expect(first is not None and not from_forwarder and leaver.client is not None,
               f"a participant that left gets nothing from the forwarder ({path}; from the forwarder: {from_forwarder})")
        leaver.client.close()

        watch_until_ended(watcher, callers, 90)
        for caller in callers:
            code, reports = caller.reports(timeout=10)
            through = [r for r in reports if r["to"] == "forwarder"]
            decoded = {}
            for report in through[-1:]:
                for reception in report.get("forwarded") or []:
                    decoded[reception["from"]] = sum(s.get("receivedFrames", 0) for s in reception["streams"] if s["kind"] == "video")
            others = sorted(n for n in names if n != caller.name)
            expect(code == 0 and through and through[-1]["ok"] and sorted(decoded) == others and all(decoded[o] > 0 for o in others),
                   f"{caller.name} decodes the others' test pattern through f1's forwarder ({decoded}, exit {code})")
        ended = watcher.state("ended", timeout=30)
        expect(ended["call"] == call, f"fwatch (f2) hears the end of the call when the last ({ended['member']}) leaves")
        print(f"cluster forwarded room call: passed in {time.monotonic() - started:.1f} s")
    except conformance.Timeout as error:
        raise AssertionError(f"forwarded room call: {error}")
    finally:
        for caller in callers:
            if caller.process.poll() is None:
                caller.process.kill()
        for member in members:
            member.kill()


class PageDriver:
    """The browser driver (Tests/Browser/meshnode_browser.py) in one mode, its JSON events read as
    they come; a watcher keeps pinging its node meanwhile."""

    def __init__(self, workdir, name, url, arguments, watcher):
        self.events = queue.Queue()
        self.watcher = watcher
        self.process = subprocess.Popen(
            ["python3", os.path.join(ROOT, "Tests", "Browser", "meshnode_browser.py"), "--url", url,
             "--artifacts", os.path.join(workdir, "artifacts"), *arguments],
            stdout=subprocess.PIPE, stderr=open(os.path.join(workdir, name + "-driver.log"), "w"), text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            if line.startswith("{"):
                self.events.put(json.loads(line))
        self.events.put({"event": "exited"})

    def event(self, name, timeout):
        """The driver's next event `name` (earlier ones skipped); fails on its `failed` or exit."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.events.get(timeout=max(0.01, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                try:
                    self.watcher.next(lambda m: False, 0.01, "nothing")  # keeps the watcher pinging
                except conformance.Timeout:
                    pass
                if time.monotonic() >= deadline:
                    raise AssertionError(f"the page: no {name} within {timeout} s")
                continue
            if event["event"] == name:
                return event
            if event["event"] in ("failed", "exited"):
                raise AssertionError(f"the page's driver {event['event']} waiting for {name}: {event.get('reason', '')}")

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


PAGE_ROOM = "#pgfwd"


def forwarded_page(binary, postgres, workdir, node_key):
    """The page in a forwarded room call across members (docs/cluster.md "Forwarded calls across
    members"): g1, g2, g3 run `--forwarder --room-call-mesh-limit 2`. A CLI starts a call of
    #pgfwd at g1 (its host); Chromium, served by g2 and logged in there (the driver's `room`
    mode), joins it peer to peer and decodes the CLI; then a second CLI joins at g3, which
    moves the call to g1's forwarder. The page must decode both CLIs through it (frames, audio
    packets and energy growing per sender), and each CLI must decode the page and the other CLI
    through it (its JSON report of the call to `forwarder`)."""
    ports = [free_port() for _ in range(3)]
    urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
    started = time.monotonic()
    members = [Member(binary, f"g{i + 1}", postgres.url, workdir, node_key,
                      extra=["--member-url", urls[i], "--forwarder", "--room-call-mesh-limit", "2"], http=ports[i])
               for i in range(3)]
    callers, driver = [], None
    try:
        for member in members:
            member.wait_ready()
        watcher = RoomWatcher("gwatch", [urls[2]])
        watcher.connect(0)
        expect(watcher.client.reply(watcher.client.send("join", {"room": PAGE_ROOM}))["type"] == "ack", f"gwatch joins {PAGE_ROOM} at g3")
        # Each CLI stays 45 s after its latest call connected (the one to the forwarder): long
        # enough for the page to measure through the forwarder on a loaded machine.
        callers.append(RoomCaller(binary, "gu1", urls[0], workdir, 45, room=PAGE_ROOM))
        call = watcher.state("started", "gu1")["call"]
        # A name that joins the room at g2 while g1 hosts its call is told the call (`current`),
        # as on one node: g2 asks the host (a page that opens the room sees the call running).
        late = RoomWatcher("glate", [urls[1]])
        late.connect(0)
        expect(late.client.reply(late.client.send("join", {"room": PAGE_ROOM}))["type"] == "ack", f"glate joins {PAGE_ROOM} at g2")
        current = late.state("current", timeout=10)
        expect(current["call"] == call and current["member"] == "glate",
               "glate, joining the room at g2 while g1 hosts its call, is told the call (current)")
        late.client.close()
        driver = PageDriver(workdir, "gpage", f"http://127.0.0.1:{ports[1]}/",
                            ["room", "--name", "gpage", "--room", PAGE_ROOM, "--kind", "video", "--others", "1", "--forwarded", "2",
                             "--wait", "90", "--seconds", "60", "--stay-with", "0"], watcher)
        driver_event = driver.event
        driver_event("in-call", 60)
        joined = watcher.state("joined", "gpage", timeout=40)
        expect(joined["call"] == call, "the page (g2) joins the call hosted by g1")
        # Peer to peer first: the page decodes gu1; then a third joins at g3 and the call moves.
        driver_event("ready-for-more", 120)
        callers.append(RoomCaller(binary, "gu3", urls[2], workdir, 45, room=PAGE_ROOM))
        moved = watcher.state("joined", "gu3", timeout=40)
        expect(moved.get("forwarder") is not None and json.loads(moved["forwarder"]["payload"])["forwarder"] == "forwarder",
               "the third join (gu3 at g3) moves the call to the host's forwarder")
        forwarded = driver_event("forwarded", 150)
        growth = forwarded.get("growth") or {}
        expect(sorted(growth) == ["gu1", "gu3"] and all(g["framesDecoded"] > 0 and g["audioPackets"] > 0 and g["audioEnergy"] > 0
                                                          for g in growth.values()),
               f"the page at g2 decodes both CLIs through g1's forwarder: frames and sound growing ({growth})")
        result = driver_event("result", 180)
        expect(result["forwarded"]["address"] == "forwarder", "the page called `forwarder` (routed to the host's)")
        watch_until_ended(watcher, callers, 90)
        for caller in callers:
            code, reports = caller.reports(timeout=20)
            through = [r for r in reports if r["to"] == "forwarder"]
            decoded = {}
            for report in through[-1:]:
                for reception in report.get("forwarded") or []:
                    decoded[reception["from"]] = sum(s.get("receivedFrames", 0) for s in reception["streams"] if s["kind"] == "video")
            others = sorted(n for n in ["gu1", "gu3", "gpage"] if n != caller.name)
            expect(code == 0 and through and through[-1]["ok"] and sorted(decoded) == others and all(decoded[o] > 0 for o in others),
                   f"{caller.name} decodes the page and the other CLI through g1's forwarder ({decoded}, exit {code})")
        print(f"cluster forwarded room call with the page: passed in {time.monotonic() - started:.1f} s")
    except conformance.Timeout as error:
        raise AssertionError(f"forwarded room call with the page: {error}")
    finally:
        stop_page_scenario(driver, callers, members)


def stop_page_scenario(driver, callers, members):
    """Ends what a scenario with the page started: the browser driver, the CLIs still running,
    the members."""
    if driver:
        driver.stop()
    for caller in callers:
        if caller.process.poll() is None:
            caller.process.kill()
    for member in members:
        member.kill()


def selected_port(log_path, timeout):
    """The local port of a CLI's first selected host pair on loopback (its log's `selected pair` line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path) as log:
            text = log.read()
        marker = "selected pair host 127.0.0.1:"
        if marker in text:
            tail = text.split(marker, 1)[1]
            return int(tail[:len(tail) - len(tail.lstrip("0123456789"))])
        time.sleep(0.2)
    raise AssertionError(f"no selected pair in {log_path} within {timeout} s")


def drop_udp_ports(ports, seconds):
    """Drops UDP to and from `ports` on loopback for `seconds` (an nftables table of our own)."""
    table = f"meshnode_cluster_{ports[0]}"
    subprocess.run(["nft", "add", "table", "inet", table], check=True)
    try:
        subprocess.run(["nft", "add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; }"], check=True)
        for port in ports:
            for way in ("dport", "sport"):
                subprocess.run(["nft", "add", "rule", "inet", table, "out", "oif", "lo", "udp", way, str(port), "drop"], check=True)
        time.sleep(seconds)
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table])


FAILOVER_ROOM = "#fwdfail"
FPS = 10
CUT = 6  # seconds the participants' paths to the forwarder are cut


def forwarded_participant_failover(binary, postgres, workdir, node_key):
    """Participants of a forwarded call whose own member dies (docs/cluster.md "Forwarded calls
    across members", item 5): h1, h2, h3 with `--forwarder --room-call-mesh-limit 2`. CLIs at h1
    (the host), h2 and h3 (given h3's and h2's URLs): the third join moves the call to h1's
    forwarder, so hu3's only call is to it; then the page, served by h3 and logged in there
    with h3's and h2's URLs, joins it. h3 is killed with -9 and, once hu3 and the page are
    logged in at h2, their paths to the forwarder are cut for 6 s: their ICE restarts (`sdp` to
    `forwarder`) go to h2, which has no route for calls placed at h3 and must find the host in
    `room_calls`. Each must get media again in the same call: hu3 decodes both CLIs past the cut
    (one call to the forwarder), its media back within 5 s of the restart; the page hears every
    sender again. The attacker: a room member at h2 not in the call sends an `sdp` to
    `forwarder`; h2 routes it to the host, which drops it."""
    if os.geteuid() != 0 or not shutil.which("nft"):
        print("cluster: the forwarded participant failover needs root and nftables; skipped")
        return
    ports = [free_port() for _ in range(3)]
    urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
    # The page of h3 opens /ws at h2 when it fails over: each member allows the pages' origins.
    origins = [arg for port in ports for arg in ("--allow-origin", f"http://127.0.0.1:{port}")]
    started = time.monotonic()
    members = [Member(binary, f"h{i + 1}", postgres.url, workdir, node_key,
                      extra=[*origins, "--member-url", urls[i], "--forwarder", "--room-call-mesh-limit", "2"], http=ports[i])
               for i in range(3)]
    callers, driver = [], None
    try:
        for member in members:
            member.wait_ready()
        watcher = RoomWatcher("hwatch", [urls[1]])
        watcher.connect(0)
        expect(watcher.client.reply(watcher.client.send("join", {"room": FAILOVER_ROOM}))["type"] == "ack", f"hwatch joins {FAILOVER_ROOM} at h2")
        begun = {}
        for i, name in enumerate(["hu1", "hu2", "hu3"]):
            extra = ["--node", urls[1]] if name == "hu3" else []
            begun[name] = time.monotonic()
            # 50 s after the call to the forwarder connected: the page joins, decodes, then the kill.
            callers.append(RoomCaller(binary, name, urls[i], workdir, 50, room=FAILOVER_ROOM, extra=extra))
            if name == "hu1":
                watcher.state("started", name)
            else:
                joined = watcher.state("joined", name, timeout=40)
        expect(joined.get("forwarder") is not None, "the third join (hu3 at h3) moves the call hosted by h1 to its forwarder")
        driver = PageDriver(workdir, "hpage", f"http://127.0.0.1:{ports[2]}/",
                            ["forwarder-page", "--name", "hpage", "--room", FAILOVER_ROOM, "--others", "3", "--wait", "60", "--hold", "1",
                             "--cut", "--node", f"{urls[2]},{urls[1]}"], watcher)
        port = selected_port(os.path.join(workdir, "hu3.log"), 40)
        # The page decodes the three CLIs through the forwarder, then says which ports to cut.
        page_ports = driver.event("cut", 120)["ports"]

        # The attacker: a member of the room at h2, not in the call, sends the forwarder an `sdp`.
        body = conformance.signed(watcher.key, "sdp", watcher.name, "forwarder", "h-mallory", sdpType="offer", sdp="v=0\r\n")
        id_ = watcher.client.send("sdp", body, to="forwarder")
        answer = watcher.next(lambda m: m["type"] in ("ack", "error") and m["body"].get("of") == id_, 10, "answer to the sdp")

        killed = time.monotonic()
        members[2].kill()
        deadline, at = time.monotonic() + RECONNECT_LIMIT * 3, {}
        while time.monotonic() < deadline and len(at) < 2:
            rows = subprocess.run(postgres.command("psql", "-h", "127.0.0.1", "-p", str(postgres.port), "-U", postgres.user, "-d", "meshnode",
                                                   "-Atc", "SELECT name FROM presence WHERE member = 'h2' AND name IN ('hu3', 'hpage')"),
                                  capture_output=True, text=True, cwd="/").stdout.split()
            for name in rows:
                at.setdefault(name, time.monotonic() - killed)
            time.sleep(0.1)
        expect(sorted(at) == ["hpage", "hu3"] and max(at.values()) < RECONNECT_LIMIT,
               f"hu3 and the page are logged in at h2 after h3's kill -9 ({', '.join(f'{n} {t:.2f} s' for n, t in sorted(at.items()))})")
        # When hu3's media is back: its log's line, seen as it is written (the log's own
        # timestamps are whole seconds).
        restored = []

        def watch_restore():
            deadline = time.monotonic() + 60
            while not restored and time.monotonic() < deadline:
                with open(os.path.join(workdir, "hu3.log")) as log:
                    if "ICE restart done" in log.read():
                        restored.append(time.monotonic())
                time.sleep(0.05)
        threading.Thread(target=watch_restore, daemon=True).start()
        cut = time.monotonic()
        drop_udp_ports([port] + page_ports, CUT)
        cut_end = time.monotonic()

        restarted = driver.event("restarted", 90)
        expect(restarted["sameCall"] and restarted["restarts"] >= 1 and all(v >= 100 for v in restarted["grown"].values())
               and len(restarted["grown"]) == 3,
               f"the page restarted ICE with the forwarder through h2, in the same call: every sender heard again "
               f"{restarted['backMs']} ms after the cut began ({CUT} s cut; its restart {restarted.get('restartMs')} ms; {restarted['grown']})")
        driver.event("result", 60)
        code, reports = callers[2].reports(timeout=120)
        report = next((r for r in reversed(reports) if r["to"] == "forwarder"), None)
        with open(os.path.join(workdir, "hu3.log")) as log:
            calls = log.read().count("is forwarded by forwarder; calling it")
        expect(report is not None and report["ok"] and report.get("iceRestarts", 0) >= 1 and calls == 1,
               f"hu3 restarted ICE with the forwarder through h2, in the same call ({calls} call(s) to it, "
               f"{report and report.get('iceRestarts')} restart(s), exit {code})")
        figures = []
        for sender in ("hu1", "hu2"):
            reception = next((r for r in report.get("forwarded") or [] if r["from"] == sender), {})
            video = next((s for s in reception.get("streams") or [] if s["kind"] == "video"), {})
            last = video.get("lastPatternFrame") or -1
            # The pattern numbers at most FPS frames a second from the sender's start: a number
            # past what it could have reached at the cut was decoded after the restart.
            bound = int((cut - begun[sender]) * FPS) + FPS
            expect(last > bound, f"hu3 decodes {sender} after the restart (last pattern frame {last}, at most {bound} at the cut)")
            figures.append(f"hu3←{sender} last frame {last} (bound {bound})")
        # The path is usable again once the cut ends (the restart keeps hu3's ports): media must
        # be back within the 5 s rule of that.
        back = restored[0] - cut_end if restored else None
        expect(back is not None and back < RECONNECT_LIMIT,
               f"hu3's media is back through the forwarder {back and round(back, 2)} s after the cut ended "
               f"(limit {RECONNECT_LIMIT} s; its restart took {report.get('restartMs')} ms from its start, {CUT} s cut)")
        figures.append(f"page: every sender again {restarted['backMs'] - CUT * 1000:.0f} ms after the cut ended")
        # The attacker's `sdp`: h2 routed it to the host (an ack), which dropped it, by key.
        with open(os.path.join(workdir, "h1.log")) as log:
            dropped = any("forwarder refused" in line and "hwatch" in line for line in log)
        expect(answer["type"] == "ack" and dropped,
               f"a room member not in the call sends the forwarder an sdp at h2: the host h1 drops it ({answer['type']}, logged {dropped})")
        print(f"cluster forwarded participant failover: passed in {time.monotonic() - started:.1f} s; {', '.join(figures)}")
    except conformance.Timeout as error:
        raise AssertionError(f"forwarded participant failover: {error}")
    finally:
        stop_page_scenario(driver, callers, members)


def run_with_postgres(command):
    """The Swift tests of SignalingClusterTests need a real PostgreSQL: a private one for them."""
    workdir = tempfile.mkdtemp(prefix="meshnode-pgtest-")
    postgres = None
    try:
        postgres = Postgres(workdir)
        env = dict(os.environ, MESHNODE_TEST_POSTGRES=postgres.url)
        return subprocess.run(command, env=env).returncode
    finally:
        if postgres:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "meshnode"))
    parser.add_argument("--serve", action="store_true", help="start PostgreSQL and three members, print their URLs, wait for Ctrl-C")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--only", choices=["room-calls", "room-calls-forwarded", "forwarded-page", "forwarded-failover"],
                        help="run only this part (room calls across members, peer to peer or forwarded)")
    parser.add_argument("--run", nargs=argparse.REMAINDER,
                        help="start PostgreSQL only, run this command with MESHNODE_TEST_POSTGRES=URL (the Swift tests), stop it")
    args = parser.parse_args()
    if args.run:
        sys.exit(run_with_postgres(args.run))
    # SIGTERM (and SIGINT, which a background job ignores) stop the cluster cleanly.
    def stop(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    workdir = tempfile.mkdtemp(prefix="meshnode-cluster-")
    postgres, members = None, []
    started = time.monotonic()
    try:
        postgres = Postgres(workdir)
        node_key = os.path.join(workdir, "node-identity")  # one node key for all members
        for name in ("m1", "m2", "m3"):
            members.append(Member(args.binary, name, postgres.url, workdir, node_key))
            # The first member makes the node key; the others read it.
            if name == "m1":
                members[0].wait_ready()
        for member in members:
            member.wait_ready()
        print(f"cluster: PostgreSQL at {postgres.url}, members " + " ".join(f"{m.name}={m.url}" for m in members)
              + f" (up in {time.monotonic() - started:.1f} s)")
        if args.serve:
            print("clients: meshnode join --name NAME " + " ".join(f"--node {m.url}" for m in members))
            signal.pause()
        elif args.only == "room-calls":
            room_calls(args.binary, postgres, workdir, node_key)
        elif args.only == "room-calls-forwarded":
            room_calls_forwarded(args.binary, postgres, workdir, node_key)
        elif args.only == "forwarded-page":
            forwarded_page(args.binary, postgres, workdir, node_key)
        elif args.only == "forwarded-failover":
            forwarded_participant_failover(args.binary, postgres, workdir, node_key)
        else:
            scenario(args.binary, members, workdir)
            flood(args.binary, postgres, workdir, node_key)
            page_failover(args.binary, postgres, workdir, node_key)
            room_calls(args.binary, postgres, workdir, node_key)
            room_calls_forwarded(args.binary, postgres, workdir, node_key)
            forwarded_page(args.binary, postgres, workdir, node_key)
            forwarded_participant_failover(args.binary, postgres, workdir, node_key)
    except KeyboardInterrupt:
        pass
    except AssertionError as error:
        print(f"cluster: FAILED: {error}; logs in {workdir}")
        args.keep = True
        sys.exit(1)
    finally:
        for member in members:
            member.kill()
        if postgres:
            postgres.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
