#!/usr/bin/env python3
"""Captures real SDPs from Debian's headless Firefox ESR (apt-get install firefox-esr) into the
Fixtures folder. Run it through capture-firefox.sh, which puts it in a network namespace that
has nothing but loopback.

A local HTTP server on 127.0.0.1 serves capture-firefox.html and the captured Chromium offer;
the page (fake camera and microphone, no permission prompt) makes an offer, answers it in a
second RTCPeerConnection, answers the Chromium offer in a third, and posts the SDPs back here.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.dirname(HERE)
CHROMIUM_OFFER = os.path.join(FIXTURES, "chromium156-captured-offer-gathered.sdp")
TIMEOUT = 60

PREFS = {
    # Fake devices and no prompt: no camera needed.
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # Gather on loopback, with real addresses instead of mDNS names.
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.default_address_only": False,
    # Nothing that talks to the outside (the namespace has no route anyway).
    "app.update.disabledForTesting": True,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "extensions.update.enabled": False,
    "services.settings.server": "http://127.0.0.1:1/",
    # The page's console.log goes to stderr (the log shown on failure).
    "devtools.console.stdout.content": True,
}


def main():
    result = {}
    done = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            files = {"/": ("capture-firefox.html", "text/html"), "/chromium-offer": (CHROMIUM_OFFER, "text/plain")}
            if self.path.startswith("/log?"):
                print("page:", urllib.parse.unquote(self.path[5:]), file=sys.stderr, flush=True)
                self.send_response(204)
                self.end_headers()
                return
            if self.path not in files:
                self.send_error(404)
                return
            name, kind = files[self.path]
            body = open(os.path.join(HERE, name), "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            result.update(json.loads(body))
            self.send_response(204)
            self.end_headers()
            done.set()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    version = subprocess.run(["firefox-esr", "--version"], capture_output=True, text=True).stdout
    major = re.search(r"(\d+)\.", version).group(1)
    work = tempfile.mkdtemp()
    try:
        profile = os.path.join(work, "profile")
        os.makedirs(profile)
        with open(os.path.join(profile, "user.js"), "w") as f:
            for key, value in PREFS.items():
                f.write(f"user_pref({json.dumps(key)}, {json.dumps(value)});\n")
        env = dict(os.environ, HOME=work, MOZ_HEADLESS="1")
        browser = subprocess.Popen(["firefox-esr", "--headless", "--no-remote", "--profile", profile, url],
                                   env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "log"), "w"))
        try:
            if not done.wait(TIMEOUT):
                sys.exit("no result from firefox within %d s; log:\n%s" % (TIMEOUT, open(os.path.join(work, "log")).read()[-3000:]))
        finally:
            browser.terminate()
            try:
                browser.wait(10)
            except subprocess.TimeoutExpired:
                browser.kill()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if "error" in result:
        sys.exit("capture page failed: " + result["error"])
    print(result["userAgent"])
    names = {"offer": "offer", "offerGathered": "offer-gathered", "answer": "answer",
             "answerToChromium": "answer-to-chromium156"}
    for key, name in names.items():
        path = os.path.join(FIXTURES, f"firefox{major}-captured-{name}.sdp")
        with open(path, "w", newline="") as f:
            f.write(result[key])
        print("wrote", path)


if __name__ == "__main__":
    main()
