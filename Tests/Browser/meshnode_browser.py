#!/usr/bin/env python3
"""Drives meshnode's web page in headless Chromium (Debian's chromium + chromedriver, selenium) or
headless Firefox (Debian's firefox-esr through Marionette, firefox_driver.py: `--browser firefox`).

The page exposes `window.meshnodeTest` (web/app.js); everything here goes through it, so no
test depends on the page's layout. Used three ways:

  scenario call reject desktop   two pages through one node (Tests/IntegrationTests/BrowserTests.swift)
  scenario reconnect             the node is restarted by the caller of this script
  answer / call                  one page as a peer for interop tests with `meshnode call`/`join`
  guard                          one page in a call while the test plays a third party
  room                           one page in a room call with CLI peers (RoomCallBrowserTests)

Every mode prints one JSON object per line; the last line is the result. Exit 0 means passed.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:
    # Firefox pages need no selenium (firefox_driver.py drives them through Marionette).
    webdriver = None

CHROMIUM = os.environ.get("MESHNODE_CHROMIUM", "/usr/bin/chromium")
# Flags every Chromium gets besides the fixed ones (--ignore-certificate-errors: a node whose
# self-signed certificate no CA vouches for), and those of MESHNODE_CHROMIUM_FLAGS (space
# separated; for a debugging run, e.g. WebRTC's logging).
EXTRA_FLAGS = os.environ.get("MESHNODE_CHROMIUM_FLAGS", "").split()
CHROMEDRIVER = os.environ.get("MESHNODE_CHROMEDRIVER", "/usr/bin/chromedriver")
START = time.monotonic()


def emit(event, **fields):
    print(json.dumps({"event": event, "t": round(time.monotonic() - START, 3), **fields}), flush=True)


class Failure(Exception):
    pass


# How long a wait for something that must happen may take: far longer than on an idle machine,
# so that a loaded one (a parallel build, `stress --cpu 2`) slows a test down instead of failing
# it. The tests check what happened, not how fast (Tests/TestSupport, TestDeadline).
EVENT_TIMEOUT = 30


def wait_for(describe, predicate, timeout=EVENT_TIMEOUT, interval=0.1):
    """Polls `predicate` until it returns something truthy; Failure after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise Failure(f"timed out after {timeout} s waiting for {describe} (last: {json.dumps(last)[:400]})")


# Which browser a page runs in: `--browser` for every page, `--peer-browser` for the second
# page of a scenario (Chromium ↔ Firefox).
BROWSERS = {"first": "chromium", "second": None}
# The X display a Firefox page shares its screen from (`--display`): headless Firefox has no
# screen of its own (getDisplayMedia fails with NotFoundError), but captures an X server's.
FIREFOX_DISPLAY = {"name": None}


class Page:
    """One browser with its own profile (so its own key) showing the page at `url`: Chromium
    through selenium and chromedriver, or Firefox through Marionette (firefox_driver.py)."""

    def __init__(self, url, label, width=1280, height=800, languages=None, browser=None):
        self.url = url
        self.label = label
        self.browser = browser or BROWSERS["first"]
        self.profile = tempfile.mkdtemp(prefix=f"meshnode-{self.browser}-{label}-")
        if self.browser == "firefox":
            self._start_firefox(width, height)
            return
        if webdriver is None:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise Failure("selenium is not importable: run `make test-deps` (pip install selenium==4.40.0)")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
            # Fake cameras (moving test patterns) and microphones (a beep), no permission
            # prompts. Three cameras, so that a test can switch: Chromium's second fake camera
            # delivers Y16 (depth) pictures, which no encoder takes; the third is MJPEG.
            "--use-fake-device-for-media-stream=device-count=3",
            "--use-fake-ui-for-media-stream",
            # getDisplayMedia without a picker: the fake capture device stands in for the screen.
            "--auto-select-desktop-capture-source=Entire screen",
            "--auto-accept-this-tab-capture",
            "--allow-loopback-in-peer-connection",
            "--autoplay-policy=no-user-gesture-required",
            "--no-first-run",
            "--no-default-browser-check",
            "--mute-audio",
        ] + EXTRA_FLAGS:
            options.add_argument(flag)
        if languages:
            # What navigator.languages says (the page picks its language from it).
            options.add_argument(f"--lang={languages.split(',')[0]}")
            options.add_experimental_option("prefs", {"intl.accept_languages": languages})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            # MESHNODE_CHROMIUM_LOG: a file for Chromium's own log (its stderr, through
            # chromedriver), for a debugging run with --enable-logging=stderr in MESHNODE_CHROMIUM_FLAGS.
            browser_log = os.environ.get("MESHNODE_CHROMIUM_LOG")
            service = Service(CHROMEDRIVER, service_args=["--enable-chrome-logs"], log_output=browser_log) if browser_log else Service(CHROMEDRIVER)
            self.driver = webdriver.Chrome(service=service, options=options)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        try:
            self.driver.set_script_timeout(30)
            self.driver.get(url)
            wait_for(f"{label}: the page's test hook", lambda: self.js("return !!window.meshnodeTest"))
        except Exception:
            self.close()
            raise

    def _start_firefox(self, width, height):
        from firefox_driver import FirefoxDriver
        try:
            self.driver = FirefoxDriver(self.profile, width, height, display=FIREFOX_DISPLAY["name"])
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        try:
            self.driver.set_script_timeout(30)
            self.driver.get(self.url)
            wait_for(f"{self.label}: the page's test hook", lambda: self.js("return !!window.meshnodeTest"))
        except Exception:
            self.close()
            raise

    def place_call(self, peer, kind):
        """Calls `peer`; returns the call id, or None when placed by a click. Firefox lets a page
        share its screen only in answer to a user gesture (getDisplayMedia's transient
        activation), so there a desktop call is placed as a person does: the contact's button."""
        if self.browser == "firefox" and kind == "desktop":
            self.hook("addContact", peer)
            self.wait_state(f"{peer} in the contact list", lambda s: peer in s["contacts"])
            wait_for(f"{self.label}: {peer}'s desktop button",
                     lambda: self.elements(f'#contact-list li[data-name="{peer}"] button[data-kind="desktop"]'))
            self.click(f'#contact-list li[data-name="{peer}"] button[data-kind="desktop"]')
            return None
        call_id = self.js(
            "return window.meshnodeTest.call(arguments[0], arguments[1]).then(r => r, e => ({error: String(e.message || e)}))",
            peer, kind)
        if isinstance(call_id, dict):
            raise Failure(f"{self.label}: cannot place a {kind} call to {peer}: {call_id['error']}")
        return call_id

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def hook(self, function, *args):
        """Calls `meshnodeTest[function](...args)`; a returned promise is awaited by WebDriver."""
        return self.js(f"return window.meshnodeTest.{function}(...arguments)", *args)

    def state(self):
        return self.hook("state")

    def stats(self):
        return self.hook("stats")

    def login(self, name, node=None):
        started = time.monotonic()
        result = self.js(
            "return window.meshnodeTest.login(arguments[0], arguments[1]).then(r => r, e => ({error: String(e.message || e)}))",
            node, name)
        if "error" in result:
            raise Failure(f"{self.label}: login as {name} failed: {result['error']}")
        result["wallMs"] = round((time.monotonic() - started) * 1000)
        return result

    def wait_state(self, describe, predicate, timeout=EVENT_TIMEOUT):
        return wait_for(f"{self.label}: {describe}", lambda: predicate(self.state()), timeout)

    def wait_online(self, peer, timeout=EVENT_TIMEOUT):
        self.wait_state(f"{peer} online", lambda s: s["contacts"].get(peer, {}).get("status") == "online", timeout)

    def wait_call(self, states, timeout=EVENT_TIMEOUT):
        return self.wait_state(f"call state in {states}", lambda s: s["call"] if s["call"] and s["call"]["state"] in states else None, timeout)

    def wait_media(self, video=True, audio=True, timeout=EVENT_TIMEOUT):
        """Waits until frames decoded and audio samples received both grow; returns (first, last)."""
        def heard(st):
            return st["audio"]["totalSamplesReceived"]

        def ready():
            st = self.stats()
            if not st:
                return None
            ok_v = not video or st["video"]["framesDecoded"] > 0
            ok_a = not audio or heard(st) > 0
            return st if ok_v and ok_a else None
        first = wait_for(f"{self.label}: media arriving", ready, timeout, 0.25)

        def grew():
            st = self.stats()
            if st["time"] <= first["time"]:
                return None
            ok_v = not video or st["video"]["framesDecoded"] > first["video"]["framesDecoded"]
            ok_a = not audio or heard(st) > heard(first)
            return st if ok_v and ok_a else None
        last = wait_for(f"{self.label}: media still flowing", grew, interval=0.25)
        return first, last

    def screenshot(self, directory, name):
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(os.path.abspath(directory), name)
        self.driver.save_screenshot(path)
        return path

    def console(self):
        try:
            return [f"{e['level']} {e['message']}" for e in self.driver.get_log("browser")]
        except Exception:
            return []

    # ---- the page as a person uses it: elements, clicks, typing ----

    def element(self, css):
        # selenium's By.CSS_SELECTOR, spelled out: Firefox pages run without selenium.
        return self.driver.find_element("css selector", css)

    def elements(self, css):
        return self.driver.find_elements("css selector", css)

    def shown(self, css):
        """Whether an element matching `css` is displayed (False when there is none)."""
        found = self.elements(css)
        return bool(found) and found[0].is_displayed()

    def text(self, css):
        return self.element(css).text

    def click(self, css):
        self.element(css).click()

    def type_into(self, css, text):
        field = self.element(css)
        field.clear()
        field.send_keys(text)

    def messages(self, lang):
        """The page's message table for `lang` (web/messages-LANG.js)."""
        return self.js(f"return import('/messages-{lang}.js').then(m => m.default)")

    def visible_text(self):
        """Everything a person sees or hears from the page: visible text, and the placeholders,
        accessible names and tooltips of visible elements."""
        return self.js("""
          const parts = [document.body.innerText];
          for (const el of document.querySelectorAll('[placeholder], [aria-label], [title]')) {
            if (!el.checkVisibility || !el.checkVisibility()) continue;
            for (const a of ['placeholder', 'aria-label', 'title']) if (el.getAttribute(a)) parts.push(el.getAttribute(a));
          }
          const dialog = document.getElementById('incoming');
          if (dialog.open) parts.push(dialog.innerText);
          return parts.join(String.fromCharCode(10));
        """)

    def close(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


def open_pages(url, labels, browsers=None):
    """Starts the browsers side by side (a Chromium takes about a second, a Firefox 5-15 s);
    `browsers` names each page's browser (default: `--browser` for all)."""
    pages, errors = {}, []
    browsers = dict(zip(labels, browsers or []))

    def start(label):
        try:
            pages[label] = Page(url, label, browser=browsers.get(label))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(f"{label}: {error}")
    threads = [threading.Thread(target=start, args=(label,)) for label in labels]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for page in pages.values():
            page.close()
        raise Failure("cannot start the browsers: " + "; ".join(errors))
    return [pages[label] for label in labels]


def summary(stats):
    """The numbers a test asserts on, small enough for a log line."""
    if not stats:
        return None
    return {
        "path": stats["path"], "rttMs": stats["rttMs"],
        "framesDecoded": stats["video"]["framesDecoded"], "frameSize": f"{stats['video']['frameWidth']}x{stats['video']['frameHeight']}",
        "videoKbps": stats["video"]["kbps"], "audioSamples": stats["audio"]["totalSamplesReceived"],
        "audioPackets": stats["audio"]["packetsReceived"], "audioKbps": stats["audio"]["kbps"],
        "packetsLost": stats["video"]["packetsLost"] + stats["audio"]["packetsLost"],
    }


# ---- scenarios: two pages through one node ------------------------------------------------------

def login_pair(alice, bob):
    a = alice.login(alice.label)
    b = bob.login(bob.label)
    emit("logged-in", alice=a["loginMs"], bob=b["loginMs"], aliceWall=a["wallMs"], bobWall=b["wallMs"])
    alice.hook("addContact", bob.label)
    bob.hook("addContact", alice.label)
    alice.wait_online(bob.label)
    bob.wait_online(alice.label)
    emit("presence", alice_sees_bob="online", bob_sees_alice="online")
    return {"loginMs": [a["loginMs"], b["loginMs"]]}


def scenario_chat(alice, bob, _args):
    chat_id = alice.hook("chat", bob.label, "hello bob, from alice's browser")
    alice.wait_state("chat acknowledged by the node", lambda s: any(m["id"] == chat_id and m["status"] == "stored" for m in s["messages"]))
    bob.wait_state("chat from alice", lambda s: any(m["id"] == chat_id and not m["mine"] for m in s["messages"]))
    reply = bob.hook("chat", alice.label, "hi alice")
    alice.wait_state("reply from bob", lambda s: any(m["id"] == reply and not m["mine"] for m in s["messages"]))
    return {"delivered": 2}


def place_and_accept(caller, callee, kind, accept=True):
    started = time.monotonic()
    call_id = caller.place_call(callee.label, kind)
    incoming = callee.wait_call(["ringing-in"])
    if incoming["kind"] != kind or incoming["peer"] != caller.label:
        raise Failure(f"{callee.label}: incoming call is {incoming}, expected {kind} from {caller.label}")
    if not callee.state()["incomingDialog"]:
        raise Failure(f"{callee.label}: no incoming-call dialog")
    if not accept:
        return started, call_id
    callee.hook("accept")
    caller.wait_call(["connected"])
    callee.wait_call(["connected"])
    return started, call_id


def hang_up(caller, callee):
    caller.hook("hangup")
    callee.wait_state("the call to end", lambda s: s["call"] is None and s["lastCall"] and s["lastCall"]["state"] == "ended")
    caller.wait_state("the call to end", lambda s: s["call"] is None)


def scenario_call(alice, bob, args):
    started, _ = place_and_accept(alice, bob, "video")
    a_first, a_last = alice.wait_media()
    b_first, b_last = bob.wait_media()
    setup_ms = round((time.monotonic() - started) * 1000)
    call = alice.state()["call"]
    shot = alice.screenshot(args.artifacts, "browser-call-caller.png")
    bob.screenshot(args.artifacts, "browser-call-callee.png")
    emit("screenshot", path=shot)
    hang_up(alice, bob)
    # In words: not "Call ended: hangup" (issue 14).
    english = alice.messages("en")
    wait_text(alice, "#call-status", english["end.hangup-local"])
    wait_text(bob, "#call-status", english["end.hangup-remote"].replace("{peer}", alice.label))
    times = call["times"]
    return {
        "mediaConfirmedMs": setup_ms, "pageTimesMs": times,
        "acceptToFirstFrameMs": times.get("firstFrameShown", 0) - times.get("connecting", 0),
        "acceptToConnectedMs": times.get("connected", 0) - times.get("connecting", 0),
        "alice": summary(a_last), "bob": summary(b_last),
        "framesDecodedGrowth": [a_last["video"]["framesDecoded"] - a_first["video"]["framesDecoded"],
                                b_last["video"]["framesDecoded"] - b_first["video"]["framesDecoded"]],
        "screenshot": shot,
    }


def scenario_call_back(alice, bob, args):
    """`call` the other way round: the second page offers (with --peer-browser, the other browser)."""
    return scenario_call(bob, alice, args)


def scenario_reject(alice, bob, _args):
    place_and_accept(bob, alice, "audio", accept=False)
    alice.hook("reject", "not now")
    ended = bob.wait_state("the rejection", lambda s: s["lastCall"] if s["call"] is None and s["lastCall"] else None)
    if ended["reason"] != "reject-remote: not now":
        raise Failure(f"bob: call ended with '{ended['reason']}', expected a rejection")
    alice.wait_state("no call", lambda s: s["call"] is None)
    # In words: not "you rejected: rejected" (issue 14).
    english = alice.messages("en")
    wait_text(alice, "#call-status", english["end.reject-local"])
    wait_text(bob, "#call-status", english["end.reject-remote-why"].replace("{peer}", alice.label).replace("{detail}", "not now"))
    return {"reason": ended["reason"]}


def scenario_desktop(alice, bob, args):
    started, _ = place_and_accept(alice, bob, "desktop")
    _, last = bob.wait_media(video=True, audio=False)
    call = bob.state()["call"]
    if call["localTracks"]:
        raise Failure(f"bob (watching) sends {call['localTracks']}")
    bob.screenshot(args.artifacts, "browser-desktop-viewer.png")
    # The sharer's big area shows its own screen, not a black box (issue 14).
    own = alice.js("""
      const v = document.getElementById('remote-video');
      const t = v.srcObject && v.srcObject.getVideoTracks()[0];
      // A captured screen: Chromium reports its displaySurface; Firefox 153 reports none, but
      // labels the screen after the monitor and every received track 'remote video'.
      const firefox = arguments[0];
      const captured = !!t && (firefox ? t.label !== '' && t.label !== 'remote video' : !!t.getSettings().displaySurface);
      return !!t && t.readyState === 'live' && captured && v.videoWidth > 0;
    """, alice.browser == "firefox")
    if not own:
        raise Failure("alice (sharing) does not see her own screen in the big area")
    alice.screenshot(args.artifacts, "browser-desktop-sharer.png")
    setup_ms = round((time.monotonic() - started) * 1000)
    hang_up(alice, bob)
    return {"setupMs": setup_ms, "bob": summary(last)}


def scenario_relay(alice, bob, _args):
    """Both pages relay-only: the call runs through the node's TURN with the credentials from
    `welcome` (the node must allow relaying to loopback: --allow-peer 127.0.0.0/8)."""
    for page in (alice, bob):
        page.hook("setRelayOnly", True)
    try:
        place_and_accept(alice, bob, "video")
        _, a_last = alice.wait_media()
        _, b_last = bob.wait_media()
        for page, st in ((alice, a_last), (bob, b_last)):
            if not (st["path"] and st["path"]["relayed"]):
                raise Failure(f"{page.label}: path is not relayed: {st['path']}")
        hang_up(alice, bob)
    finally:
        for page in (alice, bob):
            page.hook("setRelayOnly", False)
    return {"alice": summary(a_last), "bob": summary(b_last)}


def scenario_reconnect(alice, bob, args):
    """The caller of this script restarts the node when it reads `restart-node`."""
    emit("restart-node")
    for page in (alice, bob):
        page.wait_state("noticing the node is gone", lambda s: s["connection"] == "reconnecting")
    lost = time.monotonic()
    # Sent while away: kept and resent with the same id once back (session resume).
    chat_id = alice.hook("chat", bob.label, "sent while the node was down")
    node_up = wait_for("the node back", lambda: health(args.url), interval=0.05)
    up = time.monotonic()
    for page in (alice, bob):
        # The next attempt comes 5 s (+ up to 1 s of jitter) after the last one failed.
        page.wait_state("back online", lambda s: s["connection"] == "online")
    online = time.monotonic()
    alice.wait_online(bob.label)
    bob.wait_online(alice.label)
    bob.wait_state("the chat sent while away", lambda s: any(m["id"] == chat_id for m in s["messages"]))
    return {
        "disconnectedToOnlineMs": round((online - lost) * 1000),
        "nodeUpToOnlineMs": round((online - up) * 1000),
        "reconnects": [alice.state()["reconnects"], bob.state()["reconnects"]],
        "nodeUp": bool(node_up),
    }


def health(url):
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=0.5) as response:
            return response.status == 200
    except Exception:
        return False


SCENARIOS = {"chat": scenario_chat, "call": scenario_call, "call-back": scenario_call_back, "relay": scenario_relay, "reject": scenario_reject, "desktop": scenario_desktop, "reconnect": scenario_reconnect}


def run_scenarios(args):
    # Fresh profiles make fresh keys: fresh names too, so a node that already bound "alice" works.
    suffix = os.urandom(3).hex()
    alice, bob = open_pages(args.url, [f"alice-{suffix}", f"bob-{suffix}"], [BROWSERS["first"], BROWSERS["second"] or BROWSERS["first"]])
    emit("browsers-started", alice=alice.browser, bob=bob.browser)
    results = {"scenarios": {}}
    try:
        results["login"] = login_pair(alice, bob)
        for name in args.names:
            began = time.monotonic()
            outcome = SCENARIOS[name](alice, bob, args)
            outcome["durationMs"] = round((time.monotonic() - began) * 1000)
            results["scenarios"][name] = outcome
            emit("passed", scenario=name, **outcome)
    except Exception:
        for page in (alice, bob):
            emit("page-state", page=page.label, state=page.state(), console=page.console()[-20:], events=page.hook("events")[-30:])
            page.screenshot(args.artifacts, f"failure-{page.label}.png")
        raise
    finally:
        alice.close()
        bob.close()
    return results


# ---- the page as a person uses it: clicks and typing (mode `page`) ------------------------------

def expect(condition, what):
    if not condition:
        raise Failure(what)


def wait_text(page, css, wanted, describe=None):
    """Waits until the text of `css` is `wanted` (the page words it in its language)."""
    return wait_for(f"{page.label}: {describe or css} to read {wanted!r}",
                    lambda: page.elements(css) and page.text(css) == wanted and page.text(css))


def login_by_form(page, name):
    page.type_into("#name", name)
    page.click("#login-submit")
    page.wait_state("online after the login button", lambda s: s["connection"] == "online" and s["name"] == name)


def add_by_form(page, name):
    page.type_into("#contact-name", name)
    page.click("#contact-form button[type=submit]")
    page.wait_state(f"{name} in the contact list", lambda s: name in s["contacts"])


def check_basics(args, suffix):
    """Issue 14's bugs: the workspace shows logged out; Add before login throws; a logout leaves
    the user's contacts and chat; a second tab replaces the first silently, whose chat then
    stays "sending…" for ever."""
    alice_name, bob_name, other_name = f"alice-{suffix}", f"bob-{suffix}", f"eve-{suffix}"
    alice, bob = open_pages(args.url, [alice_name, bob_name])
    try:
        expect(alice.shown("#login-form") and not alice.shown("#workspace"), "logged out, the workspace (contacts, video, chat) is shown")
        expect(not alice.shown("#contact-form"), "logged out, the Add form is reachable")
        expect(alice.hook("addContact", bob_name) is False, "Add before login did something")
        expect(alice.state()["contacts"] == {}, "Add before login made a contact")

        login_by_form(alice, alice_name)
        bob.login(bob_name)
        add_by_form(alice, bob_name)
        alice.wait_online(bob_name)
        alice.type_into("#chat-text", "hello from alice")
        alice.click("#chat-form button[type=submit]")
        alice.wait_state("the chat acknowledged", lambda s: any(m["status"] == "stored" for m in s["messages"]))
        expect(alice.elements(f'#contact-list li[data-name="{bob_name}"] button[data-kind="video"]'), "no call buttons for bob")

        alice.click("#logout")
        alice.wait_state("logged out", lambda s: s["name"] is None and s["connection"] == "offline")
        expect(not alice.shown("#workspace") and alice.shown("#login-form"), "after logout the workspace still shows")
        left = {"contacts": len(alice.elements("#contact-list li")), "messages": len(alice.elements("#messages li")),
                "buttons": len(alice.elements("#contact-list button")), "me": alice.text("#me")}
        expect(left == {"contacts": 0, "messages": 0, "buttons": 0, "me": ""}, f"after logout the previous user's things stay: {left}")

        # The next person on this browser sees nothing of alice's.
        login_by_form(alice, other_name)
        st = alice.state()
        seen = alice.visible_text()
        expect(st["contacts"] == {} and st["messages"] == [] and bob_name not in seen and "hello from alice" not in seen,
               f"the next user sees the previous one's contacts or chat: {st['contacts']} {seen[:300]}")

        # A second tab with bob's name: the first says so and can take the name back.
        english = bob.messages("en")
        first = bob.driver.current_window_handle
        bob.driver.switch_to.new_window("tab")
        bob.driver.get(args.url)
        second = bob.driver.current_window_handle
        bob.wait_state("the second tab online as bob (the saved session)", lambda s: s["connection"] == "online" and s["name"] == bob_name)
        bob.driver.switch_to.window(first)
        bob.wait_state("the first tab replaced", lambda s: s["connection"] == "replaced")
        expect(bob.shown("#replaced") and bob.shown("#take-back"), "the replaced tab does not say so")
        bob.screenshot(args.artifacts, "browser-replaced.png")
        wait_text(bob, "#connection", english["conn.replaced"])
        expect(all(not b.is_enabled() for b in bob.elements("#contact-list button[data-kind]")), "the replaced tab still offers calls")
        chat_id = bob.hook("chat", alice_name, "typed in the replaced tab")
        meta = bob.text("#messages li:last-child .meta")
        expect(english["chat.waitingReplaced"] in meta and english["chat.sending"] not in meta, f"a chat in the replaced tab reads {meta!r}")

        bob.click("#take-back")
        bob.wait_state("the first tab online again", lambda s: s["connection"] == "online")
        bob.wait_state("the waiting chat delivered", lambda s: any(m["id"] == chat_id and m["status"] == "stored" for m in s["messages"]))
        expect(not bob.shown("#replaced"), "the banner stays after taking the name back")
        bob.driver.switch_to.window(second)
        bob.wait_state("the second tab replaced in turn", lambda s: s["connection"] == "replaced")
        expect(bob.shown("#replaced"), "the second tab does not say it was replaced")
        return {"replacedBanner": True, "logoutCleared": left}
    except Exception:
        dump_pages([alice, bob], args)
        raise
    finally:
        alice.close()
        bob.close()


def check_ringing(args, suffix):
    """Ringing both ways: the caller sees "Calling …" and Cancel at once, Cancel stops the
    callee's ringing; a third caller gets `busy` while a call runs; a call to a hidden page
    raises a notification and rings (WebAudio)."""
    names = [f"alice-{suffix}", f"bob-{suffix}", f"carol-{suffix}"]
    alice, bob, carol = open_pages(args.url, names)
    try:
        for page in (alice, bob, carol):
            page.login(page.label)
        for page in (alice, carol):
            page.hook("addContact", bob.label)
            page.wait_online(bob.label)
        english = alice.messages("en")
        origin = args.url.rstrip("/")
        bob.driver.execute_cdp_cmd("Browser.grantPermissions", {"permissions": ["notifications"], "origin": origin})

        # Cancel, by clicks.
        alice.click(f'#contact-list li[data-name="{bob.label}"] button[data-kind="video"]')
        wait_text(alice, "#call-status", english["call.calling"].replace("{peer}", bob.label))
        wait_text(alice, "#hangup", english["call.cancel"])
        alice.screenshot(args.artifacts, "browser-ringing-out.png")
        rung = bob.wait_call(["ringing-in"])
        expect(bob.state()["incomingDialog"], "bob: no dialog for the incoming call")
        bob.wait_state("the ring tone", lambda s: s["ringing"]["tone"])
        expect(bob.state()["ringing"]["notifications"] == 0, "a notification although the page is in front")
        alice.click("#hangup")
        ended = bob.wait_state("the cancel", lambda s: s["lastCall"] if s["call"] is None and s["lastCall"] else None)
        expect(ended["code"] == "cancel-remote" and ended["id"] == rung["id"], f"bob's call ended {ended}")
        st = bob.state()
        expect(not st["incomingDialog"] and not st["ringing"]["tone"], f"bob still rings after the cancel: {st['ringing']}")
        wait_text(bob, "#call-status", english["end.cancel-remote"].replace("{peer}", alice.label))
        wait_text(alice, "#call-status", english["end.cancel-local"])
        expect(alice.state()["lastCall"]["code"] == "cancel-local", "alice's call did not end as cancelled")

        # Busy: carol calls bob while bob talks with alice.
        place_and_accept(alice, bob, "audio")
        carol.click(f'#contact-list li[data-name="{bob.label}"] button[data-kind="audio"]')
        busy = carol.wait_state("busy", lambda s: s["lastCall"] if s["call"] is None and s["lastCall"] else None)
        expect(busy["code"] == "busy", f"carol's call ended {busy}")
        wait_text(carol, "#call-status", english["end.busy"].replace("{peer}", bob.label))
        st = bob.state()
        expect(st["call"] and st["call"]["peer"] == alice.label and st["call"]["state"] == "connected" and not st["incomingDialog"],
               f"bob's call with alice was disturbed: {st['call']} dialog {st['incomingDialog']}")
        expect(any(e["event"] == "busy" and e["from"] == carol.label for e in bob.hook("events")), "bob logged no busy answer")
        hang_up(alice, bob)

        # A hidden page: another tab in front of bob's page.
        blank = bob.driver.execute_cdp_cmd("Target.createTarget", {"url": "about:blank"})
        try:
            bob.wait_state("the page hidden", lambda s: s["ringing"]["visibility"] == "hidden")
            alice.hook("call", bob.label, "audio")
            bob.wait_call(["ringing-in"])
            rang = bob.wait_state("a notification and the tone", lambda s: s["ringing"] if s["ringing"]["notifications"] > 0 and s["ringing"]["tone"] else None)
        finally:
            bob.driver.execute_cdp_cmd("Target.closeTarget", {"targetId": blank["targetId"]})
        alice.hook("hangup")
        bob.wait_state("the cancel", lambda s: s["call"] is None)
        return {"cancel": ended["code"], "busy": busy["code"], "hidden": rang}
    except Exception:
        dump_pages([alice, bob, carol], args)
        raise
    finally:
        for page in (alice, bob, carol):
            page.close()


def english_left(page, english, chinese):
    """The English strings of the page's table that are visible now (those the Chinese table
    words differently); each is checked by its fixed parts, around the `{…}` fields."""
    import re
    seen = page.visible_text()
    left = []
    for key, text in english.items():
        if chinese.get(key) == text:
            continue
        parts = [p for p in re.split(r"\{\w+\}", text) if len(p.strip()) >= 3 and re.search(r"[A-Za-z]", p)]
        if parts and all(p in seen for p in parts):
            left.append(f"{key}: {text}")
    # Text the page formats with the browser's Intl, not from the tables: times.
    left += [f"time: {m}" for m in re.findall(r"\d:\d\d(?::\d\d)? ?[AP]M\b", seen)]
    return left


def check_language(args, suffix):
    """English and Simplified Chinese: the browser's language picks one, the page switches and
    remembers; in Chinese no English string of the page is visible, in any state."""
    alice, bob = open_pages(args.url, [f"alice-{suffix}", f"bob-{suffix}"])
    try:
        english, chinese = alice.messages("en"), alice.messages("zh")
        expect(set(english) == set(chinese), f"the tables differ in keys: {sorted(set(english) ^ set(chinese))}")
        st = alice.state()
        expect(st["language"] == "en" and alice.js("return document.documentElement.lang") == "en", "an en-US browser does not start in English")
        # The check sees English where there is English (so that its silence below means something).
        expect(len(english_left(alice, english, chinese)) >= 5, f"the check finds no English on the English page: {english_left(alice, english, chinese)}")
        from selenium.webdriver.support.ui import Select
        Select(alice.element("#language")).select_by_value("zh")
        wait_for("<html lang> to follow", lambda: alice.js("return document.documentElement.lang") == "zh-CN")
        states = {}

        def no_english(state):
            left = english_left(alice, english, chinese)
            expect(not left, f"English visible in the Chinese page ({state}): {left}")
            states[state] = "ok"

        no_english("logged out")
        alice.screenshot(args.artifacts, "browser-zh-logged-out.png")
        alice.login(alice.label)
        bob.login(bob.label)
        no_english("logged in")
        alice.hook("addContact", bob.label)
        alice.wait_online(bob.label)
        alice.hook("chat", bob.label, "你好")
        alice.wait_state("the chat acknowledged", lambda s: any(m["status"] == "stored" for m in s["messages"]))
        bob.hook("chat", alice.label, "hi")  # bob is not alice's contact: a stranger
        alice.wait_state("bob's chat", lambda s: any(not m["mine"] for m in s["messages"]))
        no_english("contacts and chat")
        # A room, with its member list and a message with an unread count on the contact.
        room = f"#zh{suffix}"
        alice.hook("joinRoom", room)
        bob.hook("joinRoom", room)
        bob.hook("chat", room, "大家好")
        alice.wait_state("bob's room message", lambda s: any(m["to"] == room and not m["mine"] for m in s["messages"]))
        alice.wait_state("both members", lambda s: len(s["rooms"][room]["members"]) == 2)
        no_english("room")
        alice.hook("select", bob.label)
        alice.hook("setRelayOnly", False)
        alice.hook("call", bob.label, "video")
        bob.wait_call(["ringing-in"])
        alice.wait_call(["ringing-out"])
        no_english("calling")
        bob.hook("accept")
        alice.wait_call(["connected"])
        alice.wait_media()
        wait_for("the statistics shown", lambda: len(alice.elements("#stats li")) >= 3)
        no_english("in a call")
        alice.screenshot(args.artifacts, "browser-zh-in-call.png")
        bob.hook("hangup")
        alice.wait_state("the call to end", lambda s: s["call"] is None)
        no_english("call ended")
        bob.hook("setLanguage", "zh")
        alice.hook("call", bob.label, "audio")
        bob.wait_call(["ringing-in"])
        left = english_left(bob, english, chinese)
        expect(not left, f"English in the Chinese incoming-call dialog: {left}")
        states["ringing in"] = "ok"
        bob.hook("reject", "rejected")
        alice.wait_state("the call to end", lambda s: s["call"] is None)
        no_english("declined")

        alice.driver.refresh()
        wait_for("the page after reload", lambda: alice.js("return !!window.meshnodeTest"))
        alice.wait_state("online again after reload", lambda s: s["connection"] == "online")
        expect(alice.state()["language"] == "zh" and alice.js("return document.documentElement.lang") == "zh-CN"
               and alice.element("#language").get_attribute("value") == "zh", "the choice of Chinese did not survive a reload")
        no_english("after reload")
        Select(alice.element("#language")).select_by_value("en")
        wait_for("<html lang> back to en", lambda: alice.js("return document.documentElement.lang") == "en")
        expect(english["contacts.title"] in alice.visible_text(), "switching back to English did not reword the page")
    except Exception:
        dump_pages([alice, bob], args)
        raise
    finally:
        alice.close()
        bob.close()
    # A browser that prefers Chinese starts in Chinese.
    chinese_browser = Page(args.url, f"zh-{suffix}", languages="zh-CN,zh")
    try:
        st = chinese_browser.state()
        expect(st["language"] == "zh" and chinese_browser.js("return document.documentElement.lang") == "zh-CN",
               f"a zh-CN browser starts in {st['language']}")
        expect(not english_left(chinese_browser, english, chinese), "English on a zh-CN browser's first page")
    finally:
        chinese_browser.close()
    return {"states": states}


def dump_pages(pages, args):
    for page in pages:
        try:
            emit("page-state", page=page.label, state=page.state(), console=page.console()[-20:], events=page.hook("events")[-30:])
            page.screenshot(args.artifacts, f"failure-{page.label}.png")
        except Exception as error:  # noqa: BLE001 - the dump must not hide the failure
            emit("page-state", page=page.label, error=str(error)[:200])


# ---- call controls (issue 14 item 1): mute, camera, share both ways, devices, timer, quality ----

def sample(page, measure, window=2.0):
    """How much `measure(stats)` grew over `window` seconds (the page samples stats each second)."""
    before = page.stats()
    time.sleep(window)
    after = page.stats()
    return measure(after) - measure(before), after


def frames(stats):
    return stats["video"]["framesDecoded"]


def energy(stats):
    return stats["audio"]["totalAudioEnergy"]


def wait_growth(page, measure, what, minimum):
    """Waits (bounded) until `measure` grows by more than `minimum` within one window."""
    def grew():
        delta, _ = sample(page, measure)
        return delta if delta > minimum else None
    return wait_for(f"{page.label}: {what}", grew, interval=0)


def wait_still(page, measure, what, at_most=0.0):
    """Waits (bounded) until `measure` grows by no more than `at_most` within one window."""
    def still():
        delta, _ = sample(page, measure)
        return {"delta": delta} if delta <= at_most else None
    return wait_for(f"{page.label}: {what}", still, interval=0)["delta"]


def frame_size(stats):
    return f"{stats['video']['frameWidth']}x{stats['video']['frameHeight']}"


def aspect(size):
    """The picture's shape from "WxH": a loaded encoder scales pictures down (Chromium's CPU
    adaptation), but keeps their shape, so the shape tells the camera (4:3 here) from the
    screen (16:9 here)."""
    width, height = (int(x) for x in size.split("x"))
    return round(width / height, 2) if height else 0


def wait_size(page, wanted, what):
    """Waits until the decoded picture has size `wanted` (a predicate on "WxH") and frames flow."""
    def ok():
        st = page.stats()
        return frame_size(st) if st and wanted(frame_size(st)) else None
    size = wait_for(f"{page.label}: {what}", ok)
    wait_growth(page, frames, f"{what}: frames advancing", 5)
    return size


def preview_is_screen(page):
    """Whether the page's own small video ("you") shows a screen capture, not the camera."""
    return page.js("""
      const v = document.getElementById('local-video');
      const t = v.srcObject && v.srcObject.getVideoTracks()[0];
      return !!t && t.readyState === 'live' && !!t.getSettings().displaySurface && v.checkVisibility();
    """)


# The quality rule of web/stats.js on made-up summaries: the limits of docs/web.md.
QUALITY_PROBE = """
const done = arguments[arguments.length - 1];
import('/stats.js').then(({ quality }) => {
  const s = (rttMs, lossPct, videoKbps, audioKbps, path = { relayed: false }) =>
    ({ path, rttMs, lossPct, video: { kbps: videoKbps }, audio: { kbps: audioKbps } });
  const level = (summary, options) => quality(summary, options).level;
  done({
    lan: level(s(2, 0, 500, 30)), slow: level(s(200, 0, 500, 30)), verySlow: level(s(450, 0, 500, 30)),
    lossy: level(s(20, 2, 500, 30)), veryLossy: level(s(20, 8, 500, 30)), trickle: level(s(20, 0, 0, 10)),
    sharer: level(s(20, null, 0, 0), { receives: false }), noPath: level(s(20, 0, null, null, null)),
  });
}, (e) => done({ error: String(e) }));
"""


def check_controls(args, suffix):
    """Issue 14 item 1, by clicks: mute and camera off are observable at the other side (audio
    energy and decoded frames stop growing, and start again); each side switches to a screen
    share and back while the other decodes the new picture; the sharer sees its own share; a
    second camera and microphone are taken mid-call; timer and quality show; details start
    closed."""
    alice, bob = open_pages(args.url, [f"alice-{suffix}", f"bob-{suffix}"])
    english = alice.messages("en")
    out = {}
    try:
        login_pair(alice, bob)
        place_and_accept(alice, bob, "video")
        alice.wait_media()
        bob.wait_media()
        for page in (alice, bob):
            for css in ("#mute", "#camera", "#share", "#hangup", "#call-timer", "#quality"):
                wait_for(f"{page.label}: {css} shown in the call", lambda: page.shown(css))
        expect(alice.element("#stats-box").get_attribute("open") is None, "the connection details are open by default")
        first = alice.text("#call-timer")
        wait_for("the call timer to advance", lambda: alice.text("#call-timer") != first)
        expect(__import__("re").fullmatch(r"\d+:\d\d", alice.text("#call-timer")), f"timer reads {alice.text('#call-timer')!r}")
        quality = wait_for("a quality level", lambda: alice.element("#quality").get_attribute("data-level") in ("good", "fair", "poor")
                           and alice.element("#quality").get_attribute("data-level"))
        out["quality"] = quality
        out["qualityText"] = alice.text("#quality")
        camera_size = frame_size(bob.stats())
        out["cameraSize"] = camera_size

        # Mute: bob hears silence (its received audio energy stops growing), then sound again.
        out["energyBeforeMute"] = wait_growth(bob, energy, "alice's audio energy growing", 0)
        alice.click("#mute")
        wait_text(alice, "#mute", english["controls.unmute"])
        expect(alice.hook("controls")["muted"], "alice's controls do not say muted")
        out["energyWhileMuted"] = wait_still(bob, energy, "silence from muted alice", 1e-6)
        out["audioPacketsWhileMuted"] = bob.stats()["audio"]["packetsReceived"]
        alice.click("#mute")
        wait_text(alice, "#mute", english["controls.mute"])
        out["energyAfterUnmute"] = wait_growth(bob, energy, "alice's sound back after unmute", 0)

        # Camera off: bob's decoded frames stop (no picture is sent at all), then flow again.
        alice.click("#camera")
        wait_text(alice, "#camera", english["controls.cameraOn"])
        wait_still(bob, frames, "no frames from alice with her camera off")
        expect(alice.shown("#video-note") and alice.text("#video-note") == english["controls.yourCameraOff"], "alice is not told her camera is off")
        wait_text(bob, "#remote-note", english["controls.theirPictureStopped"].replace("{peer}", alice.label), "bob's note that alice's picture stopped")
        alice.screenshot(args.artifacts, "controls-camera-off.png")
        bob.screenshot(args.artifacts, "controls-camera-off-other-side.png")
        alice.click("#camera")
        out["framesAfterCameraOn"] = wait_growth(bob, frames, "alice's frames back after camera on", 5)
        wait_for("bob's note gone with alice's picture back", lambda: not bob.shown("#remote-note"))

        # Alice shares her screen: bob decodes a picture of another size; alice sees her share.
        alice.click("#share")
        wait_text(alice, "#share", english["controls.stopSharing"])
        screen_size = wait_size(bob, lambda size: aspect(size) not in (0, aspect(camera_size)), "alice's screen at bob")
        out["screenSize"] = screen_size
        wait_for("alice's own preview shows her screen", lambda: preview_is_screen(alice))
        alice.screenshot(args.artifacts, "controls-sharer.png")
        bob.screenshot(args.artifacts, "controls-viewer.png")
        # Bob shares too (the other direction), while alice still shares.
        bob.click("#share")
        wait_size(alice, lambda size: aspect(size) == aspect(screen_size), "bob's screen at alice")
        wait_for("bob's own preview shows his screen", lambda: preview_is_screen(bob))
        # Alice stops: bob sees her camera again; bob stops: alice sees his camera again.
        alice.click("#share")
        wait_size(bob, lambda size: aspect(size) == aspect(camera_size), "alice's camera back at bob")
        bob.click("#share")
        wait_size(alice, lambda size: aspect(size) == aspect(camera_size), "bob's camera back at alice")
        expect(not preview_is_screen(alice) and not preview_is_screen(bob), "a preview still shows a screen after stopping")
        out["videoCall"] = "ok"

        # Another camera and microphone mid-call (Chromium's fake devices).
        devices = alice.hook("devices")
        out["devices"] = {k: len(v) for k, v in devices.items()}
        from selenium.webdriver.support.ui import Select
        for kind, select, measure in (("video", "#camera-select", frames), ("audio", "#microphone-select", energy)):
            choices = devices["videoinput" if kind == "video" else "audioinput"]
            now = alice.hook("controls")["camera" if kind == "video" else "microphone"]
            # The last one: for cameras, Chromium's third fake camera (see the flags above).
            other = next((d["deviceId"] for d in reversed(choices) if d["deviceId"] not in (now, "default")), None)
            if other is None:
                out[f"{kind}Switch"] = "one device only"
                continue
            if alice.element("#devices-box").get_attribute("open") is None:
                alice.click("#devices-box summary")
            Select(alice.element(select)).select_by_value(other)
            alice.wait_state(f"the {kind} device switched", lambda s: alice.hook("controls")["camera" if kind == "video" else "microphone"] == other)
            # Two windows in a row after the switch: the new device's media, not the old one's tail.
            minimum = 5 if kind == "video" else 0
            wait_growth(bob, measure, f"alice's {kind} after switching device", minimum)
            delta, _ = sample(bob, measure)
            expect(delta > minimum, f"alice's {kind} stopped after switching device (grew {delta})")
            out[f"{kind}Switch"] = "ok"
        out["speakerChoices"] = len(devices["audiooutput"])
        speakers = [d["deviceId"] for d in devices["audiooutput"] if d["deviceId"] != "default"]
        if speakers:
            Select(alice.element("#speaker-select")).select_by_value(speakers[-1])
            wait_for("the speaker switched (setSinkId)", lambda: alice.js("return document.getElementById('remote-video').sinkId") == speakers[-1])
            out["speakerSwitch"] = "ok"

        alice.click("#stats-box summary")
        expect(len(alice.elements("#stats li")) >= 3, "the details do not open")
        out["qualityRule"] = alice.driver.execute_async_script(QUALITY_PROBE)
        wanted = {"lan": "good", "slow": "fair", "verySlow": "poor", "lossy": "fair", "veryLossy": "poor", "trickle": "fair", "sharer": "good", "noPath": "unknown"}
        expect(out["qualityRule"] == wanted, f"quality levels {out['qualityRule']}, expected {wanted}")
        alice.click("#hangup")
        bob.wait_state("the call to end", lambda s: s["call"] is None)
        expect(not alice.shown("#mute") and not alice.shown("#share") and not alice.shown("#call-timer"), "controls stay after the call")

        # An audio call has no video channel: sharing adds one with a new offer, either way.
        alice.wait_state("bob's call buttons on again", lambda s: s["contacts"][bob.label]["status"] == "online" and s["call"] is None)
        place_and_accept(alice, bob, "audio")
        wait_growth(bob, energy, "audio in the audio call", 0)
        expect(not alice.shown("#camera"), "an audio call offers Camera off")
        expect(bob.stats()["video"]["framesDecoded"] == 0, "video before anyone shares in an audio call")
        alice.click("#share")
        wait_size(bob, lambda size: aspect(size) not in (0, aspect(camera_size)), "alice's screen at bob in the audio call")
        wait_for("alice's own preview shows her screen (audio call)", lambda: preview_is_screen(alice))
        bob.click("#share")
        wait_size(alice, lambda size: aspect(size) not in (0, aspect(camera_size)), "bob's screen at alice in the audio call")
        alice.screenshot(args.artifacts, "controls-audio-call-both-share.png")
        alice.click("#share")
        wait_still(bob, frames, "no frames at bob after alice stops sharing (audio call)")
        wait_growth(bob, energy, "audio still flowing after the shares", 0)
        out["audioCall"] = "ok"
        bob.click("#hangup")
        alice.wait_state("the audio call to end", lambda s: s["call"] is None)
    except Exception:
        dump_pages([alice, bob], args)
        raise
    finally:
        alice.close()
        bob.close()
    return out


# ---- accessibility (issue 14 item 5): axe-core in every state, at two sizes ----------------------

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SIZES = [(1280, 800), (390, 844)]


def axe_source():
    try:
        import selenium_axe_python
    except ImportError:
        raise Failure("selenium-axe-python is not importable: run `make test-deps` (it bundles axe-core 4.9)")
    with open(os.path.join(os.path.dirname(selenium_axe_python.__file__), "axe-core", "axe.min.js"), encoding="utf-8") as f:
        return f.read()


def set_viewport(page, width, height):
    page.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    # Two frames: the layout of the new size is done.
    page.driver.execute_async_script("const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done()));")


# Controls smaller than 44 × 44 CSS px (WCAG 2.1 2.5.5) among those visible on the page.
SMALL_TARGETS = """
  const small = [];
  for (const el of document.querySelectorAll('button, input, select, summary, a[href], [tabindex]:not([tabindex="-1"])')) {
    if (!el.checkVisibility || !el.checkVisibility()) continue;
    if (el.closest('dialog') && !el.closest('dialog').open) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (el.id === 'messages') continue;  // a scrolling list, not a target
    if (r.height < 44 || r.width < 44) small.push(`${el.tagName.toLowerCase()}#${el.id || el.className || el.textContent.trim().slice(0, 20)} ${Math.round(r.width)}x${Math.round(r.height)}`);
  }
  return small;
"""


def audit(page, state, args, results):
    """axe-core at each size, a screenshot of each, and (phone size) the touch-target check."""
    source = axe_source()
    for width, height in SIZES:
        set_viewport(page, width, height)
        if not page.js("return !!window.axe"):
            page.js(source)
        found = page.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})"
            ".then(r => done({violations: r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 200))}))}), e => done({error: String(e)}))",
            AXE_TAGS)
        expect("error" not in found, f"axe failed: {found.get('error')}")
        size = f"{width}x{height}"
        shot = page.screenshot(os.path.join(args.artifacts, "page-states"), f"{state.replace(' ', '-')}-{size}.png")
        small = page.js(SMALL_TARGETS) if width < 600 else []
        results.append({"state": state, "size": size, "violations": len(found["violations"]), "details": found["violations"],
                        "smallTargets": small, "screenshot": shot})
        emit("audit", state=state, size=size, violations=[v["id"] for v in found["violations"]], smallTargets=small)
    set_viewport(page, *SIZES[0])


def check_a11y(args, suffix):
    """axe-core (wcag2a, wcag2aa, wcag21a, wcag21aa) in each state of the page at 1280×800 and
    390×844, a screenshot of each, and 44 px targets at phone size. Every state is audited even
    when one fails, so that one run lists them all."""
    alice, bob = open_pages(args.url, [f"alice-{suffix}", f"bob-{suffix}"])
    results = []
    try:
        audit(alice, "logged out", args, results)
        login_by_form(alice, alice.label)
        bob.login(bob.label)
        add_by_form(alice, bob.label)
        bob.hook("addContact", alice.label)
        alice.wait_online(bob.label)
        bob.wait_online(alice.label)
        audit(alice, "contacts", args, results)
        alice.type_into("#chat-text", "Hello Bob, can we talk?")
        alice.click("#chat-form button[type=submit]")
        bob.hook("chat", alice.label, "Yes, call me.")
        alice.wait_state("bob's reply", lambda s: any(not m["mine"] for m in s["messages"]))
        alice.wait_state("the chat delivered", lambda s: all(m["status"] == "stored" for m in s["messages"] if m["mine"]))
        # New messages are said by screen readers: the polite live region has bob's words.
        wait_for("the new message in the live region", lambda: "Yes, call me." in alice.js("return document.getElementById('announcer').textContent")
                 and alice.element("#announcer").get_attribute("aria-live") == "polite")
        # Names computed by the browser (WebDriver's computed label): whom each button calls,
        # and presence in words.
        names = {b.get_attribute("data-kind"): b.accessible_name for b in alice.elements(f'#contact-list li[data-name="{bob.label}"] button[data-kind]')}
        english = alice.messages("en")
        expect(names == {k: english[f"kind.{k}.label"].replace("{peer}", bob.label) for k in ("audio", "video", "desktop")}, f"call buttons are named {names}")
        expect(alice.text(f'#contact-list li[data-name="{bob.label}"] .presence') == english["presence.online"], "presence is not in words")
        audit(alice, "chat", args, results)
        # A room with a member list, presence in words and a message (issue 14 item 4).
        room = f"#a11y{suffix}"
        join_by_form(alice, room)
        bob.hook("joinRoom", room)
        bob.hook("chat", room, "Hello room")
        alice.wait_state("bob's room message", lambda s: any(m["to"] == room and not m["mine"] for m in s["messages"]))
        alice.wait_state("both members", lambda s: len(s["rooms"][room]["members"]) == 2)
        audit(alice, "room", args, results)
        alice.click(f'#contact-list li[data-name="{bob.label}"] button[data-kind="video"]')
        alice.wait_call(["ringing-out"])
        bob.wait_call(["ringing-in"])
        expect(alice.element("#call-status").get_attribute("role") == "status", "the call state is not a status region")
        audit(alice, "ringing out", args, results)
        expect(bob.element("#incoming").accessible_name == bob.messages("en")["incoming.title"], f"the dialog is named {bob.element('#incoming').accessible_name!r}")
        audit(bob, "ringing in", args, results)
        bob.click("#accept")
        alice.wait_call(["connected"])
        alice.wait_media()
        wait_for("the quality badge", lambda: alice.element("#quality").get_attribute("data-level") != "unknown")
        audit(alice, "in a call", args, results)
        alice.click("#share")
        wait_for("alice's preview shows her screen", lambda: preview_is_screen(alice))
        audit(alice, "sharing", args, results)
        alice.click("#hangup")
        alice.wait_state("the call to end", lambda s: s["call"] is None)
        audit(alice, "call ended", args, results)
    except Exception:
        dump_pages([alice, bob], args)
        raise
    finally:
        alice.close()
        bob.close()
    bad = [f"{r['state']} {r['size']}: {r['details']} {r['smallTargets']}" for r in results if r["violations"] or r["smallTargets"]]
    expect(not bad, "accessibility problems:\n" + "\n".join(bad))
    return {"states": {f"{r['state']} {r['size']}": r["violations"] for r in results}, "screenshots": len(results),
            "directory": os.path.abspath(os.path.join(args.artifacts, "page-states"))}


# ---- keyboard only (issue 14 item 5) ---------------------------------------------------------

def press(page, *keys):
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(page.driver).send_keys(*keys).perform()


FOCUSED = """
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {id: el.id, text: (el.getAttribute('aria-label') || el.textContent || el.value || '').trim().slice(0, 60),
          tag: el.tagName.toLowerCase(), visibleFocus: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2};
"""


def focused(page):
    return page.js(FOCUSED)


def tab_to(page, wanted, what, limit=40):
    """Presses Tab until `wanted(focused element)`; each stop must show its focus."""
    from selenium.webdriver.common.keys import Keys
    for _ in range(limit):
        now = focused(page)
        if now and wanted(now):
            expect(now["visibleFocus"], f"{page.label}: focus on {now} is not visible")
            return now
        press(page, Keys.TAB)
        now = focused(page)
        expect(now is None or now["visibleFocus"], f"{page.label}: focus on {now} is not visible")
    raise Failure(f"{page.label}: {what} not reachable by Tab within {limit} presses (at {focused(page)})")


def check_keyboard(args, suffix):
    """Log in, add a contact, call, accept and hang up with keys only; focus is visible at every
    stop and moves sensibly: to the contact form after login, to the dialog's Accept, to Hang up,
    and back to the call button after the call."""
    from selenium.webdriver.common.keys import Keys
    alice, bob = open_pages(args.url, [f"alice-{suffix}", f"bob-{suffix}"])
    english = alice.messages("en")
    stops = {}
    try:
        for page, other in ((alice, bob), (bob, alice)):
            tab_to(page, lambda f: f["id"] == "name", "the name field")
            press(page, page.label, Keys.ENTER)
            page.wait_state("online after Enter", lambda s: s["connection"] == "online")
            now = wait_for(f"{page.label}: focus after login", lambda: focused(page))
            expect(now["id"] == "contact-name", f"{page.label}: after login focus is on {now}, not the contact field")
            press(page, other.label, Keys.ENTER)
            page.wait_state(f"{other.label} added", lambda s: other.label in s["contacts"])
        alice.wait_online(bob.label)
        bob.wait_online(alice.label)
        label = english["kind.video.label"].replace("{peer}", bob.label)
        stops["callButton"] = tab_to(alice, lambda f: f["text"] == label, f"the button {label!r}")["text"]
        press(alice, Keys.ENTER)
        bob.wait_call(["ringing-in"])
        now = wait_for("alice's focus on Cancel", lambda: focused(alice))
        expect(now["id"] == "hangup", f"alice: while ringing out focus is on {now}, not Cancel")
        now = wait_for("bob's focus in the dialog", lambda: focused(bob))
        expect(now["id"] == "accept", f"bob: the incoming-call dialog did not take focus ({now})")
        press(bob, Keys.ENTER)
        alice.wait_call(["connected"])
        bob.wait_call(["connected"])
        now = focused(bob)
        expect(now and now["id"] == "hangup", f"bob: after accepting focus is on {now}, not Hang up")
        # The call's own controls by keyboard: Space on Mute, Enter on the details.
        tab_to(alice, lambda f: f["id"] == "mute", "Mute")
        press(alice, Keys.SPACE)
        alice.wait_state("muted by Space", lambda s: alice.hook("controls")["muted"])
        tab_to(alice, lambda f: f["tag"] == "summary" and f["text"] == english["call.stats"], "Connection details")
        press(alice, Keys.ENTER)
        wait_for("the details opened by Enter", lambda: alice.element("#stats-box").get_attribute("open") is not None)
        stops["inCall"] = ["mute", "details"]
        press(bob, Keys.ENTER)
        alice.wait_state("the call ended by bob's Enter on Hang up", lambda s: s["call"] is None)
        bob.wait_state("the call ended", lambda s: s["call"] is None)
        now = wait_for("alice's focus back", lambda: focused(alice))
        expect(now["text"] == label, f"alice: after the call focus is on {now}, not back on {label!r}")
        stops["afterCall"] = now["text"]
        # A second call: Escape in bob's dialog declines it (not a repeat of the last Accept).
        alice.wait_state("bob's call buttons on again", lambda s: s["contacts"][bob.label]["status"] == "online")
        press(alice, Keys.ENTER)
        bob.wait_call(["ringing-in"])
        wait_for("bob's focus on Accept again", lambda: (focused(bob) or {}).get("id") == "accept")
        press(bob, Keys.ESCAPE)
        ended = alice.wait_state("the call declined by Escape", lambda s: s["lastCall"] if s["call"] is None and s["lastCall"] else None)
        expect(ended["code"] == "reject-remote", f"Escape ended alice's call as {ended['code']}")
        stops["escape"] = ended["code"]
    except Exception:
        dump_pages([alice, bob], args)
        raise
    finally:
        alice.close()
        bob.close()
    return stops


# ---- several devices and recovery (issue 14 item 3), by clicks -------------------------------------

BACKUP_PASSPHRASE = "plum kettle 73 orbit"


def check_devices(args, suffix):
    """A name on two devices: the owner shows a link code, a second profile types it and the owner
    allows it; both receive a chat and ring on a call, the first to accept takes it and the other
    stops ringing; the owner removes the device, which is cut off. Then the owner's key is backed
    up and restored into a fresh profile (a wrong passphrase and an edited file get their own
    errors), which logs in as the name. axe on each new state at both sizes."""
    name, caller = f"ann-{suffix}", f"cal-{suffix}"
    owner, phone, bob = open_pages(args.url, [f"owner-{suffix}", f"phone-{suffix}", f"bob-{suffix}"])
    results, out, fresh = [], {}, None
    english = owner.messages("en")
    try:
        login_by_form(owner, name)
        owner_key = owner.state()["key"]
        bob.login(caller)
        owner.click("#devices-open")
        wait_for("the devices dialog", lambda: owner.hook("linkedDevices")["dialog"])
        owner.click("#make-code")
        code = wait_for("a link code", lambda: owner.text("#code-value") or None)
        expect(len(code) == 6 and code.isdigit(), f"the code is {code!r}")
        audit(owner, "devices dialog", args, results)
        # In Chinese the dialog shows no English string of the page's table (issue 14 item 6).
        chinese = owner.messages("zh")
        owner.hook("setLanguage", "zh")
        wait_text(owner, "#devices-title", chinese["devices.title"])
        left = english_left(owner, english, chinese)
        expect(not left, f"English left in the Chinese devices dialog: {left}")
        owner.hook("setLanguage", "en")
        wait_text(owner, "#devices-title", english["devices.title"])
        owner.click("#devices-close")
        phone.click("#link-box summary")
        phone.click("#restore-box summary")
        audit(phone, "link and restore forms", args, results)
        phone.type_into("#link-name", name)
        phone.type_into("#link-code", code)
        phone.click("#link-submit")
        wait_for("the owner's approval dialog", lambda: owner.hook("linkedDevices")["requestDialog"])
        waiting = wait_for("the phone's fingerprint", lambda: phone.text("#link-status") if "…" not in phone.text("#link-status") and phone.text("#link-status") else None)
        shown = owner.text("#request-text")
        audit(owner, "device request", args, results)
        owner.click("#request-allow")
        phone.wait_state("the linked phone online as the name", lambda s: s["connection"] == "online" and s["name"] == name)
        phone_key = phone.state()["key"]
        expect(phone_key != owner_key, "the phone logged in with the owner's key")
        print_text = phone_key[:16]
        grouped = " ".join(print_text[i:i + 4] for i in range(0, 16, 4))
        expect(grouped in shown and grouped in waiting, f"the fingerprint {grouped} is not on both screens: {shown!r} / {waiting!r}")
        expect(owner.state()["connection"] == "online", "the phone's login replaced the owner")
        # Both devices hear the chat.
        bob.hook("addContact", name)
        bob.wait_online(name)
        chat_id = bob.hook("chat", name, "to both of your devices")
        for page in (owner, phone):
            page.wait_state("the chat on this device", lambda s: any(m["id"] == chat_id and not m["mine"] for m in s["messages"]))
        # Both ring; the phone takes it; the owner stops ringing.
        bob.js("window.meshnodeTest.call(arguments[0], 'audio')", name)
        owner.wait_call(["ringing-in"])
        phone.wait_call(["ringing-in"])
        phone.click("#accept")
        stopped = owner.wait_state("the owner to stop ringing", lambda s: s["lastCall"] if s["call"] is None and s["lastCall"] else None)
        expect(stopped["code"] == "answered-elsewhere", f"the owner's call ended with {stopped}")
        expect(not owner.state()["incomingDialog"], "the owner's incoming dialog is still open")
        phone.wait_call(["connected"])
        bob.wait_call(["connected"])
        out["ringing"] = {"owner": stopped["code"], "phone": "connected"}
        bob.hook("hangup")
        phone.wait_state("the call over", lambda s: s["call"] is None)
        # The owner removes the phone by its Remove button: its connection is cut, it stays out.
        owner.click("#devices-open")
        wait_for("two devices listed", lambda: len(owner.hook("linkedDevices")["list"]) == 2)
        audit(owner, "devices listed", args, results)
        owner.click("#device-list button.danger")
        revoked = phone.wait_state("the phone cut off", lambda s: s if s["connection"] == "refused" and "revoked" in s["reason"] else None)
        out["revoked"] = revoked["reason"][:80]
        wait_for("one device left", lambda: len(owner.hook("linkedDevices")["list"]) == 1)
        # Back up the owner's key by the form (the file is offered as a download), and take the
        # same file's text through the hook.
        owner.type_into("#backup-pass", BACKUP_PASSPHRASE)
        owner.type_into("#backup-pass2", BACKUP_PASSPHRASE)
        owner.click("#backup-submit")
        wait_text(owner, "#backup-status", english["backup.done"])
        audit(owner, "backup saved", args, results)
        owner.click("#devices-close")
        text = owner.hook("backup", BACKUP_PASSPHRASE)
        backup = json.loads(text)
        expect(backup["kdf"]["name"] == "pbkdf2-sha256" and backup["kdf"]["iterations"] >= 600000 and backup["key"] == owner_key, f"backup {backup['kdf']}")
        os.makedirs(args.artifacts, exist_ok=True)
        path = os.path.join(os.path.abspath(args.artifacts), f"backup-{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        edited = dict(backup, ciphertext=backup["ciphertext"][:-6] + ("AAAAA=" if not backup["ciphertext"].endswith("AAAAA=") else "BBBBB="))
        edited_path = path.replace(".json", "-edited.json")
        with open(edited_path, "w", encoding="utf-8") as f:
            json.dump(edited, f)
        owner.hook("logout")
        owner.close()
        # A fresh profile: wrong passphrase, edited file, then the right one.
        fresh = Page(args.url, f"fresh-{suffix}")
        fresh.click("#restore-box summary")
        attempts = {}
        for label, file, passphrase, wanted in [("wrong", path, "not the passphrase", "backup.error.wrong-passphrase"),
                                                ("edited", edited_path, BACKUP_PASSPHRASE, "backup.error.changed")]:
            fresh.element("#restore-file").send_keys(file)
            fresh.type_into("#restore-pass", passphrase)
            fresh.click("#restore-submit")
            wait_text(fresh, "#restore-status", english[wanted])
            attempts[label] = wanted
            if label == "wrong":
                audit(fresh, "restore wrong passphrase", args, results)
        fresh.element("#restore-file").send_keys(path)
        fresh.type_into("#restore-pass", BACKUP_PASSPHRASE)
        started = time.monotonic()
        fresh.click("#restore-submit")
        fresh.wait_state("the restored key online as the name", lambda s: s["connection"] == "online" and s["name"] == name and s["key"] == owner_key)
        out["restoreMs"] = round((time.monotonic() - started) * 1000)
        out["restoreErrors"] = attempts
        fresh.hook("logout")
        out["backupFile"] = path
        out["passphrase"] = BACKUP_PASSPHRASE
        out["name"] = name
        out["caller"] = caller
        out["states"] = {f"{r['state']} {r['size']}": r["violations"] for r in results}
        bad = [r for r in results if r["violations"] or r["smallTargets"]]
        expect(not bad, f"axe or touch targets: {[(r['state'], r['size'], r['details'], r['smallTargets']) for r in bad]}")
        return out
    finally:
        for page in (owner, phone, bob, fresh):
            if page:
                try:
                    page.close()
                except Exception:  # noqa: BLE001 - closed already
                    pass



def check_restore(args, suffix):
    """A fresh profile restores backups the CLI made (`meshnode keygen --backup`): the Argon2id
    one is refused with the words that say how to make one the page reads, the PBKDF2 one logs
    in as its name with the CLI's key."""
    expect(args.backup and args.argon2 and args.passphrase and args.key, "restore needs --backup, --argon2, --passphrase and --key")
    english = None
    page = Page(args.url, f"restore-{suffix}")
    try:
        english = page.messages("en")
        page.click("#restore-box summary")
        page.element("#restore-file").send_keys(os.path.abspath(args.argon2))
        page.type_into("#restore-pass", args.passphrase)
        page.click("#restore-submit")
        wait_text(page, "#restore-status", english["backup.error.argon2"])
        page.element("#restore-file").send_keys(os.path.abspath(args.backup))
        page.type_into("#restore-pass", args.passphrase)
        page.click("#restore-submit")
        state = page.wait_state("online with the CLI's key", lambda s: s if s["connection"] == "online" and s["key"] == args.key else None)
        return {"name": state["name"], "key": state["key"], "argon2": "refused with how-to"}
    finally:
        page.close()

PAGE_CHECKS = {"basics": check_basics, "ringing": check_ringing, "language": check_language,
               "controls": check_controls, "a11y": check_a11y, "keyboard": check_keyboard,
               "devices": check_devices, "restore": check_restore}


def run_page(args):
    suffix = os.urandom(3).hex()
    results = {"checks": {}}
    for index, name in enumerate(args.names):
        began = time.monotonic()
        # Fresh names per check: each opens fresh profiles, so fresh keys.
        outcome = PAGE_CHECKS[name](args, f"{suffix}{index}")
        outcome["durationMs"] = round((time.monotonic() - began) * 1000)
        results["checks"][name] = outcome
        emit("passed", check=name, **outcome)
    return results


# ---- rooms across two linked nodes (issue 14 item 4) ------------------------------------------

def node_address(url):
    """`host:port` of a node's page URL: the address its rooms and peers are named by."""
    from urllib.parse import urlsplit
    return urlsplit(url).netloc


def room_texts(page, room):
    return [m["text"] for m in page.state()["messages"] if m["to"] == room]


def join_by_form(page, room):
    page.type_into("#room-name", room)
    page.click("#room-form button[type=submit]")
    page.wait_state(f"{room} in the rooms list", lambda s: room in s["rooms"] and s["selected"] == room)
    wait_for(f"{page.label}: {room} listed", lambda: page.elements(f'#room-list li[data-room="{room}"]'))


# How many messages of one conversation the page keeps in IndexedDB (web/chatstore.js).
STORED_CONVERSATION = """
const done = arguments[arguments.length - 1];
const open = indexedDB.open('meshnode-chat');
open.onsuccess = () => {
  const rows = open.result.transaction('conversations').objectStore('conversations').getAll();
  rows.onsuccess = () => done({count: rows.result.filter(r => r.conversation === arguments[0]).reduce((n, r) => n + r.messages.length, 0)});
  rows.onerror = () => done({error: String(rows.error)});
};
open.onerror = () => done({error: String(open.error)});
"""


# The bounds of the page's IndexedDB history (web/chatstore.js), run inside a page: 600 messages
# of one conversation keep the newest 500; 205 conversations keep the 200 written last.
CHAT_STORE_BOUNDS = """
const done = arguments[arguments.length - 1];
(async () => {
  const { ChatStore, MAX_PER_CONVERSATION, MAX_CONVERSATIONS } = await import('/chatstore.js');
  const store = await ChatStore.open('bounds-probe@' + Math.random());
  const many = Array.from({length: 600}, (_, i) => ({id: 'p' + i, from: 'x', to: '#probe', text: 't' + i, sent: i}));
  await store.save('#probe', many);
  let rows = await store.load();
  const kept = rows.get('#probe');
  for (let i = 0; i < MAX_CONVERSATIONS + 5; i++) await store.save('c' + i, [{id: 'm', from: 'x', to: 'me', text: 'hi', sent: 1}]);
  rows = await store.load();
  return {perConversation: kept.length, firstKept: kept[0].text, lastKept: kept[kept.length - 1].text,
          conversations: rows.size, oldestGone: !rows.has('#probe') && !rows.has('c0'), limits: [MAX_PER_CONVERSATION, MAX_CONVERSATIONS]};
})().then(done, (e) => done({error: String(e)}));
"""


def check_rooms(args, suffix):
    """Three browsers, two linked nodes: alice and carol at the first (the room's host), bob at the
    second. alice creates #room by the form, carol joins it, bob joins #room@first; each one's
    message reaches the other two; the member list says who is online in words; carol's unread
    count grows while she reads another chat and clears when she opens the room; bob away (page
    closed) misses a message and finds it after he comes back (the host's history through his
    node), and his earlier messages come from IndexedDB before the node answers; a fresh member
    pages back through 70 messages by scrolling to the top."""
    expect(args.url2, "rooms needs --url2: the page of a second node linked to the first")
    host = node_address(args.url)
    room = f"#team{suffix}"
    remote_room = f"{room}@{host}"
    alice_name, carol_name, bob_name = f"alice-{suffix}", f"carol-{suffix}", f"bob-{suffix}"
    bob_at_host = f"{bob_name}@{node_address(args.url2)}"
    pages = {}
    try:
        pages["alice"] = Page(args.url, alice_name)
        pages["carol"] = Page(args.url, carol_name)
        pages["bob"] = Page(args.url2, bob_name)
        alice, carol, bob = pages["alice"], pages["carol"], pages["bob"]
        login_by_form(alice, alice_name)
        login_by_form(carol, carol_name)
        login_by_form(bob, bob_name)
        english = alice.messages("en")

        # alice creates the room by typing its name; carol joins it; bob joins it at alice's node.
        join_by_form(alice, room)
        join_by_form(carol, room)
        join_by_form(bob, remote_room)
        # The member list, with presence in words: alice sees bob (at the other node) online.
        alice.wait_state("three members", lambda s: len(s["rooms"][room]["members"]) == 3)
        member = f'#room-members li[data-name="{bob_at_host}"] .presence'
        wait_text(alice, member, english["presence.online"], "bob's presence in the member list")
        bob.wait_state("alice in bob's member list", lambda s: s["rooms"][remote_room]["members"].get(alice_name + "@" + host) == "online")

        # Chat by the form, across the nodes both ways.
        alice.type_into("#chat-text", "hello team")
        alice.click("#chat-form button[type=submit]")
        for page, where in ((carol, room), (bob, remote_room)):
            page.wait_state("alice's room message", lambda s, where=where: "hello team" in [m["text"] for m in s["messages"] if m["to"] == where])
        bob.type_into("#chat-text", "hello from the other node")
        bob.click("#chat-form button[type=submit]")
        bob.wait_state("bob's message stored", lambda s: any(m["mine"] and m["status"] == "stored" for m in s["messages"]))
        got = alice.wait_state("bob's message at alice", lambda s: next((m for m in s["messages"] if m["text"] == "hello from the other node"), None))
        expect(got["from"] == bob_at_host and got["to"] == room, f"alice got bob's message as {got}")
        # New room messages are said by screen readers (the polite live region).
        wait_for("bob's message in alice's live region", lambda: "hello from the other node" in alice.js("return document.getElementById('announcer').textContent"))

        # Unread counts: carol reads a chat with alice meanwhile; the room's count grows, in words.
        carol.hook("addContact", alice_name)
        carol.click(f'#contact-list li[data-name="{alice_name}"] button.who')
        for index in range(3):
            alice.hook("chat", room, f"unread {index}")
        carol.wait_state("three unread in the room", lambda s: s["unread"].get(room) == 3)
        badge = english["chat.unread"].replace("{n}", "3")
        wait_text(carol, f'#room-list li[data-room="{room}"] .unread', badge, "the room's unread badge")
        # A direct message to carol while she reads the room counts for alice's contact.
        carol.click(f'#room-list li[data-room="{room}"] button.who')
        carol.wait_state("the room read", lambda s: not s["unread"].get(room))
        alice.hook("chat", carol_name, "psst")
        carol.wait_state("one unread from alice", lambda s: s["unread"].get(alice_name) == 1)
        unread = dict(carol.state()["unread"])

        # bob goes away; alice writes; bob comes back: his earlier messages are there from
        # IndexedDB at once, and the missed one arrives from the host's history, unread.
        kept = wait_for("bob's room in IndexedDB", lambda: (bob.driver.execute_async_script(STORED_CONVERSATION, remote_room) or {}).get("count"))
        emit("indexeddb", room=remote_room, messages=kept)
        bob.driver.get("about:blank")
        alice.hook("chat", room, "while bob was away")
        alice.wait_state("the away message stored", lambda s: any(m["text"] == "while bob was away" and m["status"] == "stored" for m in s["messages"]))
        bob.driver.get(args.url2)
        wait_for("bob's page again", lambda: bob.js("return !!window.meshnodeTest"))
        restored = bob.wait_state("bob's messages from IndexedDB", lambda s: "hello team" in room_texts(bob, remote_room) and s)
        from_store_before_online = restored["connection"] != "online"
        bob.wait_state("bob online again", lambda s: s["connection"] == "online")
        bob.wait_state("the missed message from the history", lambda s: "while bob was away" in [m["text"] for m in s["messages"] if m["to"] == remote_room])
        expect(bob.state()["unread"].get(remote_room, 0) >= 1, f"bob's unread after coming back: {bob.state()['unread']}")
        texts = room_texts(bob, remote_room)
        expect(texts.count("hello team") == 1 and texts.count("while bob was away") == 1, f"bob's room shows repeats: {texts}")

        # 70 messages, then dave (a fresh browser at the host) joins: the newest 50 come first;
        # scrolling to the top brings the older ones, page by page.
        for index in range(70):
            alice.hook("chat", room, f"n{index:02d}")
        alice.wait_state("70 stored", lambda s: sum(1 for m in s["messages"] if m["mine"] and m["text"].startswith("n") and m["status"] == "stored") == 70)
        pages["dave"] = Page(args.url, f"dave-{suffix}")
        dave = pages["dave"]
        login_by_form(dave, f"dave-{suffix}")
        join_by_form(dave, room)
        first = dave.wait_state("the newest page", lambda s: len(room_texts(dave, room)) >= 50 and len(room_texts(dave, room)))
        expect(first == 50, f"dave got {first} messages in the first page")
        expect(dave.shown("#older"), "no Earlier messages button while older messages remain")
        pages_read = 0
        while dave.state()["rooms"][room]["more"] is not False and pages_read < 5:
            before = len(room_texts(dave, room))
            dave.js("document.getElementById('messages').scrollTop = 0; document.getElementById('messages').dispatchEvent(new Event('scroll'))")
            dave.wait_state("an older page", lambda s, before=before: len(room_texts(dave, room)) > before or s["rooms"][room]["more"] is False)
            pages_read += 1
        everything = room_texts(dave, room)
        expect(everything.count("hello team") == 1 and "n00" in everything and "n69" in everything, f"dave's history: {len(everything)} messages")
        dave.wait_state("no older messages left", lambda s: s["rooms"][room]["more"] is False)
        shot = dave.screenshot(args.artifacts, "rooms-dave.png")
        carol.screenshot(args.artifacts, "rooms-carol.png")
        bob.screenshot(args.artifacts, "rooms-bob.png")

        bounds = dave.driver.execute_async_script(CHAT_STORE_BOUNDS)
        expect(bounds.get("perConversation") == 500 and bounds.get("firstKept") == "t100" and bounds.get("lastKept") == "t599"
               and bounds.get("conversations") == 200 and bounds.get("oldestGone"), f"IndexedDB bounds: {bounds}")

        # bob leaves by the button: gone from his list and from alice's members.
        bob.click(f'#room-list li[data-room="{remote_room}"] button.leave')
        bob.wait_state("the room left", lambda s: remote_room not in s["rooms"])
        alice.wait_state("bob gone from the members", lambda s: bob_at_host not in s["rooms"][room]["members"])
        return {"members": 4, "unread": unread, "historyMessages": len(everything), "pagesScrolled": pages_read, "indexedDB": bounds,
                "restoredBeforeOnline": from_store_before_online, "screenshot": shot}
    except Exception:
        dump_pages(list(pages.values()), args)
        raise
    finally:
        for page in pages.values():
            page.close()


PAGE_CHECKS["rooms"] = check_rooms


# The page's check of a room call's participants (web/roomcall.js verifyParticipants), run
# inside a page with real Ed25519 identities, playing a node that lies: it may list only
# participants whose own signed start/join verifies for this call and room under the key pinned
# for the name. Each forgery must be refused; the honest entry is kept.
ROOM_CALL_PROBE = """
const done = arguments[arguments.length - 1];
(async () => {
  const { verifyParticipants, signRoomCall } = await import('/roomcall.js');
  const { KeyPins } = await import('/call.js');
  const { loadIdentity } = await import('/identity.js');
  const a = await loadIdentity('rc-probe-a');
  const b = await loadIdentity('rc-probe-b');
  const mallory = await loadIdentity('rc-probe-m');
  const memory = new Map();
  const pins = new KeyPins('probe:1', { getItem: (k) => memory.get(k) ?? null, setItem: (k, v) => memory.set(k, v) });
  pins.check('rc-probe-b', b.publicKey);
  const ts = Date.now() / 1000;
  const fields = (who, extra = {}) => ({ action: 'join', from: who.name, room: '#r', call: 'rc-1', ts, ...extra });
  const honest = await signRoomCall(a, fields(a, { action: 'start', kind: 'video' }));
  const tampered = { ...(await signRoomCall(b, fields(b))) };
  tampered.payload = tampered.payload.replace('"rc-1"', '"rc-1" ');
  const cases = {
    tampered,
    otherCall: await signRoomCall(b, fields(b, { call: 'rc-2' })),
    otherRoom: await signRoomCall(b, fields(b, { room: '#elsewhere' })),
    keyChanged: await signRoomCall({ ...mallory, name: 'rc-probe-b', sign: (t) => mallory.sign(t), publicKey: mallory.publicKey }, fields({ name: 'rc-probe-b' })),
    leave: await signRoomCall(b, fields(b, { action: 'leave' })),
    duplicate: honest,
    unendorsedDevice: { ...(await signRoomCall(mallory, fields({ name: 'rc-probe-c' }))), owner: b.publicKey },
  };
  const result = {};
  for (const [name, forged] of Object.entries(cases)) {
    const { participants, refused } = await verifyParticipants({ room: '#r', call: 'rc-1', participants: [honest, forged] }, pins);
    result[name] = { kept: participants.map((p) => p.name), refused };
  }
  return result;
})().then(done, (e) => done({ error: String(e) }));
"""


def check_roomcall(args, suffix):
    """A room call by clicks, three pages (alice, bob, carol in one room): alice presses *Video
    call*; bob is rung (dialog and tone) and presses *Join*; carol presses *Not now*, then sees
    *Call running, 2 in* with *Join* and presses it; each grid has three tiles with names and
    pictures; alice presses *Share screen* and her tile is large on bob's and carol's pages;
    carol's page in Chinese shows no English; *Leave call* by each ends the call for the room.
    axe-core (0 violations) and a screenshot in each new state at both sizes."""
    alice, bob, carol = open_pages(args.url, [f"alice-{suffix}", f"bob-{suffix}", f"carol-{suffix}"])
    results = []
    english = alice.messages("en")
    # Three pages each encoding and decoding two videos: axe-core over such a page takes its
    # time on a loaded machine (the default 30 s script timeout was seen to pass).
    for page in (alice, bob, carol):
        page.driver.set_script_timeout(120)
    try:
        probe = alice.driver.execute_async_script(ROOM_CALL_PROBE)
        emit("room-call-probe", **probe)
        expect("error" not in probe, f"the probe failed: {probe}")
        for case, outcome in probe.items():
            expect(outcome == {"kept": ["rc-probe-a"], "refused": 1}, f"a lying node's {case} participant was not refused: {outcome}")
        for page in (alice, bob, carol):
            page.login(page.label)
        room = f"#call{suffix}"
        join_by_form(alice, room)
        for page in (bob, carol):
            page.hook("joinRoom", room)
        alice.wait_state("three members", lambda s: len(s["rooms"][room]["members"]) == 3)
        none = english["roomCall.none"].replace("{room}", room)
        wait_text(alice, "#room-call-line", none)
        names = {b.get_attribute("id"): b.accessible_name for b in alice.elements("#room-call-box button") if b.is_displayed()}
        expect(names == {"room-call-audio": english["roomCall.start.audio.label"].replace("{room}", room),
                         "room-call-video": english["roomCall.start.video.label"].replace("{room}", room)}, f"the room's call buttons are {names}")
        audit(alice, "room call none", args, results)
        alice.click("#room-call-video")
        wait_for("alice's grid", lambda: alice.shown("#room-grid li.tile"))
        audit(alice, "room call waiting", args, results)
        for page in (bob, carol):
            wait_for(f"{page.label} rung", lambda page=page: page.js("return document.getElementById('room-ring').open")
                     and page.state()["ringing"]["tone"])
        ring = english["roomCall.ring.video"].replace("{peer}", alice.label).replace("{room}", room)
        expect(bob.text("#room-ring-text") == ring, f"bob's ring says {bob.text('#room-ring-text')!r}")
        expect(bob.element("#room-ring").accessible_name == english["roomCall.ringTitle"], "the ring dialog has no name")
        # The rooms list says a call runs there, without opening the room.
        badge = f'#room-list li[data-room="{room}"] .room-call-badge'
        wait_for("the call in carol's rooms list", lambda: carol.shown(badge) and carol.text(badge).startswith(english["roomCall.badge"].split("{n}")[0]))
        audit(bob, "room call ringing", args, results)
        bob.click("#room-ring-join")
        carol.click("#room-ring-decline")
        wait_for("carol's ring over", lambda: not carol.js("return document.getElementById('room-ring').open") and not carol.state()["ringing"]["tone"])
        carol.hook("select", room)
        running = english["roomCall.running"].replace("{room}", room).replace("{n}", "2")
        wait_for("carol sees the running call", lambda: carol.text("#room-call-line").startswith(running.split("{names}")[0]))
        audit(carol, "room call running", args, results)

        def decoding(page, others):
            pairs = room_pairs(page)
            return len([p for p in pairs.values() if p["state"] == "connected" and (p.get("stats") or {}).get("video", {}).get("framesDecoded", 0) > 0]) >= others
        wait_for("alice and bob see each other", lambda: decoding(alice, 1) and decoding(bob, 1))
        carol.click("#room-call-join")
        for page in (alice, bob, carol):
            wait_for(f"{page.label}: two others decoded", lambda page=page: decoding(page, 2))
            wait_for(f"{page.label}: three tiles", lambda page=page: len(page.elements("#room-grid li.tile")) == 3)
        tiles = sorted(t.get_attribute("data-name") for t in bob.elements("#room-grid li.tile"))
        expect(tiles == sorted([alice.label, bob.label, carol.label]), f"bob's tiles: {tiles}")
        audit(bob, "in a room call", args, results)
        alice.click("#room-share")
        for page in (bob, carol):
            wait_for(f"{page.label}: alice's screen large", lambda page=page: page.elements(f'#room-grid li.tile.large[data-name="{alice.label}"]'))
        sharing = english["roomCall.sharing"].replace("{peer}", alice.label)
        wait_text(bob, "#room-call-status", sharing)
        audit(bob, "room call sharing", args, results)
        carol.hook("setLanguage", "zh")
        left = english_left(carol, english, carol.messages("zh"))
        expect(not left, f"English left on carol's Chinese room call: {left}")
        carol.hook("setLanguage", "en")
        alice.click("#room-leave")
        # bob, in the room call, answers a one-to-one call busy; his room call goes on.
        alice.hook("addContact", bob.label)
        alice.wait_online(bob.label)
        alice.place_call(bob.label, "audio")
        busy = alice.wait_state("the call answered busy", lambda s: s["lastCall"] if s["call"] is None and s["lastCall"] else None)
        expect(busy["code"] == "busy" and not bob.js("return document.getElementById('incoming').open"), f"bob in a room call: {busy}")
        for page in (bob, carol):
            wait_for(f"{page.label}: alice's tile gone", lambda page=page: len(page.elements("#room-grid li.tile")) == 2)
        still = english["roomCall.running"].split("{n}")[0].replace("{room}", room)
        wait_for("alice back to the room's line", lambda: alice.text("#room-call-line").startswith(still))
        bob.click("#room-leave")
        carol.click("#room-leave")
        wait_text(alice, "#room-call-line", none)
        view = alice.hook("roomCalls")
        expect(view["own"] is None and room not in view["known"], f"the call did not end: {view}")
    except Exception:
        dump_pages([alice, bob, carol], args)
        raise
    finally:
        for page in (alice, bob, carol):
            page.close()
    bad = [f"{r['state']} {r['size']}: {r['details']} {r['smallTargets']}" for r in results if r["violations"] or r["smallTargets"]]
    expect(not bad, "accessibility problems:\n" + "\n".join(bad))
    return {"states": {f"{r['state']} {r['size']}": r["violations"] for r in results}, "screenshots": len(results),
            "directory": os.path.abspath(os.path.join(args.artifacts, "page-states")), "probe": probe, "busy": busy["code"]}


PAGE_CHECKS["roomcall"] = check_roomcall


# ---- one page as a peer (interop with `meshnode call` / `meshnode join`) -------------------------

def run_answer(args):
    """Log in as NAME, accept the first call, let it run, report the stats."""
    page = Page(args.url, args.name)
    try:
        login = page.login(args.name)
        emit("logged-in", name=args.name, loginMs=login["loginMs"])
        page.hook("setAutoAccept", True)
        call = page.wait_call(["connecting", "connected"], args.wait)
        emit("call", peer=call["peer"], kind=call["kind"])
        page.wait_call(["connected"])
        want_video = call["kind"] != "audio"
        first, last = page.wait_media(video=want_video, audio=call["kind"] != "desktop")
        shared = None
        if args.share_after is not None:
            # The callee clicks *Share screen* mid-call (a track replacement, no new offer).
            time.sleep(args.share_after)
            page.click("#share")
            page.wait_state("sending the screen", lambda s: "video:screen" in (page.hook("controls") or {}).get("sending", []))
            shared = {"controls": page.hook("controls")}
            emit("shared", **shared)
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline and page.state()["call"]:
            time.sleep(0.5)
        final = page.stats() or last
        shot = page.screenshot(args.artifacts, f"browser-answer-{args.name}.png")
        page.hook("hangup")
        return {"kind": call["kind"], "peer": call["peer"], "times": page.state()["lastCall"]["times"] if page.state()["lastCall"] else None,
                "first": summary(first), "stats": summary(final), "screenshot": shot, "shared": shared}
    finally:
        page.close()


def run_call(args):
    """Log in as NAME, call ADDR with KIND, run for SECONDS, hang up, report the stats."""
    page = Page(args.url, args.name)
    try:
        login = page.login(args.name)
        emit("logged-in", name=args.name, loginMs=login["loginMs"])
        page.hook("addContact", args.to)
        page.wait_online(args.to, args.wait)
        started = time.monotonic()
        page.place_call(args.to, args.kind)
        page.wait_call(["connected"])
        first, last = page.wait_media(video=args.kind == "video", audio=args.kind != "desktop")
        setup_ms = round((time.monotonic() - started) * 1000)
        shared = None
        if args.share_after is not None:
            # Mid-call, the page switches its camera to a screen share by clicking *Share
            # screen* (a track replacement; the peer sees no new offer).
            time.sleep(args.share_after)
            page.click("#share")
            # Sending the screen; or, in an audio call with a peer that does not answer the new
            # offer (the CLI), told so after the offer's 5 s.
            refused = page.messages("en")["controls.shareNotAnswered"].replace("{peer}", args.to)
            outcome = wait_for("sharing or refused", lambda: ("sharing" if "video:screen" in (page.hook("controls") or {}).get("sending", [])
                                                             else "refused" if page.text("#call-status") == refused else None))
            sent = page.js("return window.meshnodeTest.stats()")
            shared = {"afterMs": round((time.monotonic() - started) * 1000), "controls": page.hook("controls"), "outcome": outcome,
                      "framesEncodedAtSwitch": sent["sent"]["video"]["framesEncoded"]}
            emit("shared", **shared)
            started = time.monotonic()
        time.sleep(max(0, args.seconds - (time.monotonic() - started)))
        final = page.stats() or last
        shot = page.screenshot(args.artifacts, f"browser-call-{args.name}.png")
        times = page.state()["call"]["times"]
        page.hook("hangup")
        if shared:
            shared["framesEncodedAtEnd"] = final["sent"]["video"]["framesEncoded"]
        return {"kind": args.kind, "to": args.to, "setupMs": setup_ms, "times": times, "first": summary(first), "stats": summary(final),
                "screenshot": shot, "shared": shared}
    finally:
        page.close()


# The page's own freshness and replay checks (web/call.js openBody, ReplayCache), run inside the
# page with a real Ed25519 identity: a `call` signed a year ago and one signed an hour ahead are
# refused as stale, a fresh message is taken once and its replay refused, and a full cache
# refuses what it can no longer tell from a replay.
FRESHNESS_PROBE = """
const done = arguments[arguments.length - 1];
(async () => {
  const { openBody, ReplayCache, KeyPins, signBody } = await import('/call.js');
  const { loadIdentity } = await import('/identity.js');
  const identity = await loadIdentity('freshness-probe');
  const memory = new Map();
  const pins = new KeyPins('probe:1', { getItem: (k) => memory.get(k) ?? null, setItem: (k, v) => memory.set(k, v) });
  const replays = new ReplayCache();
  const now = Date.now() / 1000;
  const message = async (type, ts, extra = {}) => {
    const body = await signBody(identity, { type, from: 'freshness-probe', to: 'me', call: 'c-probe', ts, ...extra });
    return { type, id: 'probe', from: 'freshness-probe', to: 'me', body };
  };
  const outcome = async (msg, cache = replays) => {
    try { await openBody(msg, pins, cache); return 'ok'; } catch (e) { return e.code || String(e); }
  };
  const yearOld = await message('call', now - 365 * 86400, { kind: 'audio', ring: 30 });
  const fresh = await message('sdp', now, { sdpType: 'offer', sdp: 'v=0' });
  const ahead = await message('hangup', now + 3600);
  const result = { yearOld: await outcome(yearOld), fresh: await outcome(fresh), replay: await outcome(fresh), ahead: await outcome(ahead) };
  // A small cache: nine messages overflow eight places; the first then counts as a replay.
  const small = new ReplayCache(8);
  const burst = [];
  for (let i = 0; i < 9; i++) burst.push(await message('candidate', now - 60 + i, { candidate: { candidate: '' } }));
  for (const msg of burst) await outcome(msg, small);
  result.evictedReplay = await outcome(burst[0], small);
  result.smallCacheSize = small.seen.size;
  return result;
})().then(done, (e) => done({ error: String(e) }));
"""


def run_guard(args):
    """Log in as NAME, check the page's freshness rules, accept the first call and keep it until
    its peer ends it. Meanwhile the test sends messages of that call from other senders; the
    result lists what the page refused and why the call ended."""
    page = Page(args.url, args.name)
    try:
        login = page.login(args.name)
        page.hook("setAutoAccept", True)
        freshness = page.driver.execute_async_script(FRESHNESS_PROBE)
        emit("logged-in", name=args.name, loginMs=login["loginMs"], freshness=freshness)
        call = page.wait_call(["connecting", "connected"], args.wait)
        emit("call", id=call["id"], peer=call["peer"])
        ended = page.wait_state("the call to end", lambda s: s["lastCall"] if s["call"] is None and s["lastCall"] else None, args.wait)
        state = page.state()
        refused = [e for e in page.hook("events") if e["event"] == "refused"]
        return {"freshness": freshness, "peer": call["peer"], "endReason": ended["reason"], "refused": refused,
                "contacts": state["contacts"], "savedContacts": state["savedContacts"]}
    finally:
        page.close()


def room_pairs(page):
    """The page's pairwise calls in its room call: name → {state, stats}."""
    own = (page.hook("roomCalls") or {}).get("own") or {}
    return own.get("pairs") or {}


def run_room(args):
    """Log in as NAME, join ROOM, start its call (or join the running one) with KIND, wait for
    OTHERS participants, each connected with its video decoded (framesDecoded advancing per
    participant) and its audio arriving (packets and energy growing); optionally share the screen;
    then hold until the others leave (or SECONDS), leave, and report per participant."""
    page = Page(args.url, args.name)
    try:
        return room_call(page, args)
    except Exception:
        dump_pages([page], args)
        raise
    finally:
        page.close()


def enter_room_call(page, args, login, verb):
    """Starts or joins the room call of args.room from a page logged in with `login` and emits `in-call`."""
    call = page.js("return window.meshnodeTest.roomCall(arguments[0], arguments[1]).then(r => r, e => ({error: String(e.message || e)}))",
                   args.room, args.kind)
    if isinstance(call, dict):
        raise Failure(f"{args.name}: cannot {verb} the call of {args.room}: {call['error']}")
    emit("in-call", name=args.name, loginMs=login["loginMs"], call=call)
    return call


def room_call(page, args):
    """The steps of `room` on an open page (run_room dumps the page when one fails)."""
    login = page.login(args.name)
    page.hook("joinRoom", args.room)
    started = time.monotonic()
    call = enter_room_call(page, args, login, "start or join")

    def everyone():
        pairs = room_pairs(page)
        live = {n: p for n, p in pairs.items() if p["state"] == "connected" and p.get("stats")
                and p["stats"]["video"]["framesDecoded"] > 0 and p["stats"]["audio"]["packetsReceived"] > 0}
        return live if len(live) >= args.others else None
    wait_for(f"{args.others} participants connected and decoding", everyone, timeout=args.wait)
    setup_ms = round((time.monotonic() - started) * 1000)
    # From here, each participant's frames, audio packets and sound energy must grow (the
    # tone or beep is heard, not only packets); a loaded machine may take a few seconds.
    before = room_pairs(page)
    measured = time.monotonic()

    def grown():
        after = room_pairs(page)
        growth = {}
        for name, pair in after.items():
            if name not in before or not pair.get("stats") or not before[name].get("stats"):
                continue
            was, now = before[name]["stats"], pair["stats"]
            growth[name] = {"framesDecoded": now["video"]["framesDecoded"] - was["video"]["framesDecoded"],
                            "audioPackets": now["audio"]["packetsReceived"] - was["audio"]["packetsReceived"],
                            "audioEnergy": round(now["audio"]["totalAudioEnergy"] - was["audio"]["totalAudioEnergy"], 6),
                            "frameSize": frame_size(now), "path": now["path"]}
        done = len(growth) >= args.others and time.monotonic() - measured >= 2 and all(
            g["framesDecoded"] > 0 and g["audioPackets"] > 0 and g["audioEnergy"] > 0 for g in growth.values())
        return growth if done else None
    growth = wait_for("frames and sound growing from everyone", grown, interval=0.5)
    window_ms = round((time.monotonic() - measured) * 1000)
    emit("decoding", growth=growth, setupMs=setup_ms, windowMs=window_ms)
    shots = {"grid": page.screenshot(args.artifacts, f"room-call-{args.name}.png")}
    forged = forge_assignments(page, args) if args.forge else None
    forwarded = forwarded_phase(page, args, shots) if args.forwarded else None
    shared = None
    if args.share:
        # A click, as a person shares (getDisplayMedia wants a user gesture).
        page.click("#room-share")
        shared = wait_for("the screen shown large", lambda: (page.hook("roomCalls") or {}).get("own", {}).get("sharer") == args.name
                          and page.js("return !!document.querySelector('#room-grid .tile.large')"))
        shots["sharing"] = page.screenshot(args.artifacts, f"room-call-{args.name}-sharing.png")
        emit("shared")
    rejoined = None
    if args.reload:
        # A reload mid-call: the page logs in again by itself and shows the call running;
        # joining again calls everyone, who replace their pair with the page's old self.
        page.driver.refresh()
        wait_for(f"{args.name}: the page's test hook", lambda: page.js("return !!window.meshnodeTest"))
        wait_for(f"{args.name}: logged in again", lambda: page.state()["connection"] == "online")
        wait_for(f"{args.name}: the running call known", lambda: args.room in (page.hook("roomCalls") or {}).get("known", {}))
        again = page.js("return window.meshnodeTest.roomCall(arguments[0], arguments[1]).then(r => r, e => ({error: String(e.message || e)}))",
                        args.room, args.kind)
        if isinstance(again, dict):
            raise Failure(f"{args.name}: cannot join again after the reload: {again['error']}")
        began = time.monotonic()
        if args.forwarded:
            # A page joining a forwarded call calls only the forwarder: no pairwise call, ever.
            pairs_seen = set()

            def through_forwarder():
                own = (page.hook("roomCalls") or {}).get("own") or {}
                pairs_seen.update((own.get("pairs") or {}).keys())
                senders = (own.get("forwarded") or {}).get("senders") or {}
                live = {n: s["video"]["framesDecoded"] for n, s in senders.items() if s and s["video"]["framesDecoded"] > 0 and s["audio"]["packetsReceived"] > 0}
                return live if len(live) >= args.forwarded else None
            frames_again = wait_for(f"{args.forwarded} senders through the forwarder after the reload", through_forwarder, timeout=args.wait)
            rejoined = {"sameCall": again == call, "ms": round((time.monotonic() - began) * 1000), "frames": frames_again, "pairs": sorted(pairs_seen)}
        else:
            wait_for(f"{args.others} participants again after the reload", everyone, timeout=args.wait)
            rejoined = {"sameCall": again == call, "ms": round((time.monotonic() - began) * 1000),
                        "frames": {n: p["stats"]["video"]["framesDecoded"] for n, p in room_pairs(page).items() if p.get("stats")}}
        emit("rejoined", **rejoined)
    # Hold until the others left (the CLIs leave after their --duration), at most SECONDS.
    deadline = time.monotonic() + args.seconds
    def others_left():
        if args.forwarded:
            known = (page.hook("roomCalls") or {}).get("known", {}).get(args.room, {})
            return len(known.get("participants") or []) - 1
        return len(room_pairs(page))
    while time.monotonic() < deadline and others_left() > args.stay_with:
        time.sleep(0.5)
    final = {name: {"state": p["state"], "stats": summary(p.get("stats"))} for name, p in room_pairs(page).items()}
    view = page.hook("roomCalls")
    page.hook("leaveRoomCall")
    left = wait_for("the room call left", lambda: (page.hook("roomCalls") or {}).get("own") is None)
    return {"room": args.room, "call": call, "setupMs": setup_ms, "growth": growth, "windowMs": window_ms, "final": final, "screenshots": shots,
            "participants": view["known"].get(args.room, {}).get("participants"), "shared": shared is not None, "left": left,
            "rejoined": rejoined, "forged": forged, "forwarded": forwarded}


def run_forwarder_page(args):
    """The page joins a room call that is forwarded from its join on (the node's peer-to-peer limit
    is below it) and decodes OTHERS senders through the forwarder. Then, with --share, it shares
    its screen in the call (an audio call: a new offer sends video on the section the forwarder
    offered it) and reports what it sends; with --cut, it prints the local port of its path to
    the forwarder (`cut`), the test drops that port, and it reports how its ICE restart brought
    media back in the same call."""
    page = Page(args.url, args.name)
    try:
        login = page.login(args.name, args.node)
        page.hook("joinRoom", args.room)
        wait_for(f"the call of {args.room} known", lambda: args.room in (page.hook("roomCalls") or {}).get("known", {}), timeout=args.wait)
        call = enter_room_call(page, args, login, "join")

        def decoding():
            link = forwarded_view(page)
            senders = link.get("senders") or {}
            live = {n: s for n, s in senders.items() if s and s["audio"]["packetsReceived"] > 0
                    and (args.kind == "audio" or s["video"]["framesDecoded"] > 0)}
            return link if link.get("call", {}).get("state") == "connected" and len(live) >= args.others else None
        link = wait_for(f"{args.others} senders through the forwarder", decoding, timeout=args.wait)
        first_call = link["call"]["id"]
        result = {"call": call, "forwarderCall": first_call}
        if args.share:
            page.click("#room-share")
            def sending():
                own = (page.hook("roomCalls") or {}).get("own") or {}
                layers = (own.get("forwarded") or {}).get("layers") or []
                sent = sum(layer["framesSent"] for layer in layers)
                return {"sharer": own.get("sharer"), "framesSent": sent, "layers": layers} if own.get("sharing") and sent >= 20 else None
            shared = wait_for("the screen sent to the forwarder", sending, timeout=args.wait)
            shared["large"] = page.js("return !!document.querySelector('#room-grid .tile.large')")
            emit("shared", **shared)
            result["shared"] = shared
            time.sleep(args.hold)
        if args.cut:
            port = wait_for("the local port of the path to the forwarder", lambda: (forwarded_view(page).get("uplink") or {}).get("localPort"))
            before = {n: s["audio"]["packetsReceived"] for n, s in (forwarded_view(page).get("senders") or {}).items() if s}
            # Every port it gathered on: Chromium keeps other pairs (another local address to the
            # forwarder's loopback one) and would switch to one of them without a restart.
            ports = sorted(set((forwarded_view(page).get("localPorts") or []) + [port]))
            emit("cut", port=port, ports=ports)
            cut_at = time.monotonic()
            seen = []

            def restarted():
                link = forwarded_view(page)
                sample = (link.get("call", {}).get("connectionState"), (link.get("uplink") or {}).get("localPort"))
                if not seen or seen[-1][1:] != sample:
                    seen.append((round(time.monotonic() - cut_at, 1),) + sample)
                return link.get("call", {}).get("restarts", 0) >= 1
            try:
                wait_for("an ICE restart towards the forwarder", restarted, timeout=args.wait)
            except Failure:
                emit("no-restart", states=seen)
                raise
            restart_seen = round((time.monotonic() - cut_at) * 1000)

            def back():
                link = forwarded_view(page)
                senders = link.get("senders") or {}
                grown = {n: s["audio"]["packetsReceived"] - before.get(n, 0) for n, s in senders.items() if s}
                # Media back: each sender's audio packets well past where they were at the cut.
                ok = link.get("call", {}).get("connectionState") == "connected" and len(grown) >= args.others and all(v >= 100 for v in grown.values())
                return {"grown": grown, "call": link["call"]} if ok else None
            recovered = wait_for("media through the forwarder again after the restart", back, timeout=args.wait)
            result["restart"] = {"port": port, "restartSeenMs": restart_seen, "backMs": round((time.monotonic() - cut_at) * 1000),
                                 "sameCall": recovered["call"]["id"] == first_call, "restarts": recovered["call"].get("restarts"),
                                 "restartMs": recovered["call"].get("times", {}).get("restartMs"), "grown": recovered["grown"]}
            emit("restarted", **result["restart"])
            time.sleep(args.hold)
        own = (page.hook("roomCalls") or {}).get("own") or {}
        result["final"] = own.get("forwarded")
        page.hook("leaveRoomCall")
        return result
    except Exception:
        dump_pages([page], args)
        raise
    finally:
        page.close()


# A forged forwarder assignment: the test plays a node (or anyone on the signaling path) that
# hands the page a `room-call-state` of its own call whose assignment is signed by a key other
# than the node key the page pinned at login, and one that names the pinned key with a signature
# that does not verify. The page must refuse both, say why, and keep its pairwise calls.
FORGE_SCRIPT = """
const [room, mode, done] = arguments;
(async () => {
  const raw = window.meshnodeTest.roomCallBody(room);
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
  const attackerKey = b64(await crypto.subtle.exportKey('raw', pair.publicKey));
  const now = Date.now() / 1000;
  const payload = JSON.stringify({ call: raw.call, expires: now + 600, forwarder: 'mallory', key: attackerKey, room: raw.room, ts: now });
  const sig = b64(await crypto.subtle.sign({ name: 'Ed25519' }, pair.privateKey, new TextEncoder().encode('meshnode.v1 forwarder\\n' + payload)));
  const nodeKey = window.meshnodeTest.nodeKey();
  const forwarder = mode === 'other-key' ? { payload, key: attackerKey, sig } : { payload, key: nodeKey, sig };
  await window.meshnodeTest.receive({ type: 'room-call-state', id: 'forged-' + mode, from: '@node', to: raw.to, body: { ...raw, event: 'joined', forwarder } });
  done(true);
})().catch((e) => done(String(e)));
"""


def forge_assignments(page, args):
    """Both forgeries, each refused with a reason shown on the page, the pairwise calls kept."""
    results = {}
    for mode in ["other-key", "bad-signature"]:
        outcome = page.driver.execute_async_script(FORGE_SCRIPT, args.room, mode)
        if outcome is not True:
            raise Failure(f"could not inject the forged assignment ({mode}): {outcome}")
        refusal = wait_for(f"the forged assignment ({mode}) refused", lambda: (page.hook("roomCalls") or {}).get("known", {}).get(args.room, {}).get("forwarderRefusal"))
        own = page.hook("roomCalls")["own"]
        if own.get("forwarded"):
            raise Failure(f"the page called a forwarder of a forged assignment ({mode}): {own['forwarded']}")
        notice = page.js("const n = document.getElementById('room-call-notice'); return n.hidden ? '' : n.textContent")
        if not notice:
            raise Failure(f"the refusal ({mode}) is not shown on the page")
        results[mode] = {"code": refusal["code"], "reason": refusal["reason"], "notice": notice}
    # The pairwise calls go on: every one still decodes new frames.
    before = room_pairs(page)

    def still():
        after = room_pairs(page)
        grew = {n: after[n]["stats"]["video"]["framesDecoded"] - before[n]["stats"]["video"]["framesDecoded"]
                for n in before if n in after and after[n].get("stats") and before[n].get("stats")}
        return grew if len(grew) >= args.others and all(v > 0 for v in grew.values()) else None
    results["pairsKept"] = wait_for("the pairwise calls going on after the forgeries", still, interval=0.5)
    page.screenshot(args.artifacts, f"room-call-{args.name}-forged.png")
    audits = []
    audit(page, "room-call-forged", args, audits)
    results["axe"] = {a["size"]: a["violations"] + len(a["smallTargets"]) for a in audits}
    emit("forged-refused", **results)
    return results


# How long the forwarded phase waits for the page's top simulcast layer to start (seconds).
TOP_LAYER_WAIT = 6


def forwarded_view(page):
    return ((page.hook("roomCalls") or {}).get("own") or {}).get("forwarded") or {}


def forwarded_phase(page, args, shots):
    """After the peer-to-peer phase: tell the test to bring the next participant, then wait for the
    move to the forwarder (pairs gone, FORWARDED senders decoded through it), measure growth per
    sender, and screenshot the grid at desktop and phone size."""
    emit("ready-for-more")
    began = time.monotonic()

    def moved():
        own = (page.hook("roomCalls") or {}).get("own") or {}
        link = own.get("forwarded") or {}
        senders = link.get("senders") or {}
        live = {n: s for n, s in senders.items() if s and s["video"]["framesDecoded"] > 0 and s["audio"]["packetsReceived"] > 0}
        if link.get("call", {}).get("state") == "connected" and len(live) >= args.forwarded and not own.get("pairs"):
            return {"senders": live, "moveMs": own.get("moveMs"), "decodedAt": link.get("decodedAt"), "address": link.get("address"),
                    "connectedAt": link.get("call", {}).get("times", {}).get("connected")}
        return None
    try:
        moved_state = wait_for(f"the call moved to the forwarder, {args.forwarded} senders decoded through it", moved, timeout=args.wait)
    except Failure:
        own = (page.hook("roomCalls") or {}).get("own") or {}
        emit("forwarded-view", forwarded=own.get("forwarded"), pairs={n: p.get("state") for n, p in (own.get("pairs") or {}).items()})
        raise
    move_ms = round((time.monotonic() - began) * 1000)
    before = forwarded_view(page)["senders"]
    measured = time.monotonic()

    def grown():
        after = forwarded_view(page).get("senders") or {}
        growth = {}
        for name, now in after.items():
            was = before.get(name)
            if not now or not was:
                continue
            growth[name] = {"framesDecoded": now["video"]["framesDecoded"] - was["video"]["framesDecoded"],
                            "audioPackets": now["audio"]["packetsReceived"] - was["audio"]["packetsReceived"],
                            "audioEnergy": round(now["audio"]["totalAudioEnergy"] - was["audio"]["totalAudioEnergy"], 6),
                            "frameSize": f"{now['video']['frameWidth']}x{now['video']['frameHeight']}"}
        done = len(growth) >= args.forwarded and time.monotonic() - measured >= 2 and all(
            g["framesDecoded"] > 0 and g["audioPackets"] > 0 and g["audioEnergy"] > 0 for g in growth.values())
        return growth if done else None
    growth = wait_for("frames and sound growing from every sender through the forwarder", grown, interval=0.5)
    window_ms = round((time.monotonic() - measured) * 1000)
    # Who speaks: the CLIs send a steady tone, so someone is highlighted, in words too.
    speaking = wait_for("a speaker highlighted", lambda: page.js(
        "return [...document.querySelectorAll('#room-grid .tile.speaking')].map(t => t.dataset.name + ': ' + t.querySelector('.tile-speaking').textContent)"))
    status = page.text("#room-call-status")
    badge = page.text("#room-call-mode")
    # Muted, this page's own tile stops being highlighted: the highlight follows the level.
    page.hook("roomCallMute", True)
    wait_for("own tile not highlighted while muted", lambda: args.name not in (page.hook("roomCalls")["own"]["speaking"]))
    page.hook("roomCallMute", False)
    # In Chinese: the new words come from the message table too.
    page.hook("setLanguage", "zh")
    chinese = {"status": page.text("#room-call-status"), "badge": page.text("#room-call-mode")}
    set_viewport(page, 390, 844)
    shots["forwarded-zh"] = page.screenshot(args.artifacts, "room-call-forwarded-zh-390x844.png")
    set_viewport(page, *SIZES[0])
    page.hook("setLanguage", "en")
    tiles = page.js("return [...document.querySelectorAll('#room-grid .tile')].map(t => ({name: t.dataset.name, label: t.querySelector('.tile-name').textContent, video: !t.hasAttribute('data-novideo')}))")
    for width, height in SIZES:
        set_viewport(page, width, height)
        shots[f"forwarded-{width}x{height}"] = page.screenshot(args.artifacts, f"room-call-forwarded-{width}x{height}.png")
    set_viewport(page, *SIZES[0])
    # axe-core and the 44 px targets on the grid of five (the badge, the speaking words).
    audits = []
    audit(page, "room-call-forwarded", args, audits)
    axe = {a["size"]: a["violations"] + len(a["smallTargets"]) for a in audits}
    # What the page sends the forwarder: its simulcast layers (rid, size, frames encoded). Its
    # top layer starts once its uplink estimate carries it, which on a loaded machine can take
    # seconds more: up to TOP_LAYER_WAIT, then the view as it is (the test judges it).
    def top_layer_sent():
        view = forwarded_view(page)
        layers = view.get("layers") or []
        return view if any(l.get("rid") == "f" and l.get("framesSent", 0) > 0 for l in layers) else None
    try:
        view = wait_for("the page's top layer sent", top_layer_sent, timeout=TOP_LAYER_WAIT, interval=0.5)
    except Failure:
        view = forwarded_view(page)
    layers = view.get("layers") or []
    uplink = view.get("uplink")
    emit("forwarded", layers=layers, uplink=uplink, growth=growth, moveMs=move_ms, pairsEndedMs=moved_state["moveMs"], decodedAt=moved_state["decodedAt"], speaking=speaking, status=status)
    return {"growth": growth, "moveMs": move_ms, "pairsEndedMs": moved_state["moveMs"], "decodedAt": moved_state["decodedAt"],
            "connectedAt": moved_state["connectedAt"], "windowMs": window_ms, "address": moved_state["address"],
            "speaking": speaking, "status": status, "badge": badge, "chinese": chinese, "tiles": tiles, "layers": layers, "uplink": uplink, "axe": axe}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the node's page, http://HOST:PORT/")
    parser.add_argument("--url2", help="a second node's page, linked to the first (page rooms)")
    parser.add_argument("--ignore-certificate-errors", action="store_true",
                        help="accept the node's certificate unchecked (an https node with a self-signed one)")
    parser.add_argument("--browser", choices=["chromium", "firefox"], default="chromium",
                        help="the browser of every page (firefox: Debian's firefox-esr through Marionette)")
    parser.add_argument("--peer-browser", choices=["chromium", "firefox"],
                        help="the browser of a scenario's second page (default: --browser)")
    parser.add_argument("--display", help="the X display (Xvfb) a Firefox page shares its screen from, e.g. :93")
    parser.add_argument("--artifacts", default=os.environ.get("MESHNODE_ARTIFACTS", ".build/test-artifacts"), help="where screenshots go")
    modes = parser.add_subparsers(dest="mode", required=True)
    scenario = modes.add_parser("scenario", help="two pages through one node")
    scenario.add_argument("names", nargs="+", choices=sorted(SCENARIOS))
    answer = modes.add_parser("answer", help="log in, accept the first call, report stats")
    answer.add_argument("--name", required=True)
    answer.add_argument("--seconds", type=float, default=5, help="how long to keep the call after media flows")
    answer.add_argument("--wait", type=float, default=60, help="how long to wait for the call")
    answer.add_argument("--share-after", type=float, default=None, help="seconds after media flows to switch to a screen share")
    call = modes.add_parser("call", help="log in, call ADDR, report stats")
    call.add_argument("--name", required=True)
    call.add_argument("--to", required=True)
    call.add_argument("--kind", choices=["audio", "video", "desktop"], default="video")
    call.add_argument("--seconds", type=float, default=5)
    call.add_argument("--wait", type=float, default=30, help="how long to wait for ADDR to be online")
    call.add_argument("--share-after", type=float, default=None,
                      help="seconds after media flows to switch to a screen share (then --seconds more)")
    page = modes.add_parser("page", help="the page as a person uses it, by clicks: basics, ringing, language")
    page.add_argument("names", nargs="+", choices=sorted(PAGE_CHECKS))
    page.add_argument("--backup", help="restore: a PBKDF2 key backup made by the CLI")
    page.add_argument("--argon2", help="restore: an Argon2id key backup made by the CLI (the page refuses it)")
    page.add_argument("--passphrase", help="restore: the backups' passphrase")
    page.add_argument("--key", help="restore: the public key the backups hold")
    room = modes.add_parser("room", help="log in, join ROOM, start or join its call, report what arrives from each participant")
    room.add_argument("--name", required=True)
    room.add_argument("--room", required=True)
    room.add_argument("--kind", choices=["audio", "video"], default="video")
    room.add_argument("--others", type=int, default=1, help="how many other participants to wait for")
    room.add_argument("--wait", type=float, default=60, help="how long to wait for them")
    room.add_argument("--seconds", type=float, default=30, help="how long to hold the call at most, after they came")
    room.add_argument("--stay-with", type=int, default=0, help="leave once at most this many pairwise calls are left")
    room.add_argument("--share", action="store_true", help="share the screen once everyone decodes")
    room.add_argument("--reload", action="store_true", help="reload the page once everyone decodes, join again, wait for everyone again")
    room.add_argument("--forge", action="store_true", help="once everyone decodes, hand the page forged forwarder assignments; it must refuse them and keep its pairs")
    room.add_argument("--forwarded", type=int, default=0,
                      help="once everyone decodes, print ready-for-more and wait until the call moved to the forwarder with this many senders decoded through it")
    fwd = modes.add_parser("forwarder-page", help="join a room call that is forwarded, decode the others through the forwarder; share, or have the path cut")
    fwd.add_argument("--name", required=True)
    fwd.add_argument("--room", required=True)
    fwd.add_argument("--kind", choices=["audio", "video"], default="audio")
    fwd.add_argument("--others", type=int, default=2)
    fwd.add_argument("--wait", type=float, default=40)
    fwd.add_argument("--hold", type=float, default=3, help="seconds to stay after each step")
    fwd.add_argument("--share", action="store_true")
    fwd.add_argument("--cut", action="store_true")
    fwd.add_argument("--node", help="the signaling URLs the page logs in with, separated by commas (default: its own node's)")
    guard = modes.add_parser("guard", help="log in, accept the first call, report what the page refused until it ends")
    guard.add_argument("--name", required=True)
    guard.add_argument("--wait", type=float, default=120, help="how long to wait for the call, and for its end")
    args = parser.parse_args()
    if args.ignore_certificate_errors:
        EXTRA_FLAGS.append("--ignore-certificate-errors")
    BROWSERS["first"], BROWSERS["second"] = args.browser, args.peer_browser
    FIREFOX_DISPLAY["name"] = args.display
    try:
        if args.mode == "scenario":
            result = run_scenarios(args)
        elif args.mode == "answer":
            result = run_answer(args)
        elif args.mode == "page":
            result = run_page(args)
        elif args.mode == "guard":
            result = run_guard(args)
        elif args.mode == "room":
            result = run_room(args)
        elif args.mode == "forwarder-page":
            result = run_forwarder_page(args)
        else:
            result = run_call(args)
    except Failure as failure:
        emit("failed", reason=str(failure))
        sys.exit(1)
    except Exception as error:  # noqa: BLE001 - WebDriver and Chromium errors, reported as JSON too
        emit("failed", reason=f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        raise
    emit("result", ok=True, durationMs=round((time.monotonic() - START) * 1000), **result)


if __name__ == "__main__":
    main()
