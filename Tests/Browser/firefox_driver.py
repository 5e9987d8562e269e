"""Headless Firefox (Debian's firefox-esr) behind the small part of selenium's WebDriver API that
meshnode_browser.py's `Page` uses, driven through Marionette (PyPI `marionette-driver`; Debian
packages no geckodriver).

Firefox is started here, not by marionette_driver's instance manager: a fresh profile per page
whose user.js holds the prefs below, `--marionette --headless`, and Marionette on a port the
profile names. Everything the page does then runs in the page's own scope (`sandbox=None`), so
`window.meshnodeTest` is visible as it is to selenium in Chromium.
"""

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from marionette_driver import By
from marionette_driver.marionette import Marionette

FIREFOX = os.environ.get("MESHNODE_FIREFOX", "/usr/bin/firefox-esr")

# What each pref is for (names checked in firefox-esr 153's libxul):
PREFS = {
    # Fake camera (a moving colour pattern) and microphone (a tone), no permission prompt.
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # getDisplayMedia without a picker (with fake streams the "screen" is the fake camera's
    # pattern); it still needs a user gesture, so a desktop call is placed by clicking.
    "media.getdisplaymedia.enabled": True,
    # 127.0.0.1 candidates, as Chromium's --allow-loopback-in-peer-connection: the CLI peers
    # of the tests gather on loopback only (--ice-address 127.0.0.1).
    "media.peerconnection.ice.loopback": True,
    # Host addresses as they are, not mDNS `.local` names (the permission to the camera does
    # the same in a real session; the CLI peer does not resolve mDNS).
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    # Nothing leaves the machine at startup: no update, telemetry, safe browsing, remote
    # settings or captive-portal probes (each would wait for a network the tests do not have).
    "app.update.disabledForTesting": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "browser.newtabpage.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "browser.search.update": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "toolkit.telemetry.enabled": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "browser.aboutwelcome.enabled": False,
    "trailhead.firstrun.didSeeAboutWelcome": True,
}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pref_line(name, value):
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    else:
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f'user_pref("{name}", {text});\n'


class Element:
    def __init__(self, element):
        self._element = element

    def click(self):
        self._element.click()

    def clear(self):
        self._element.clear()

    def send_keys(self, text):
        self._element.send_keys(text)

    def is_displayed(self):
        return self._element.is_displayed()

    def is_enabled(self):
        return self._element.is_enabled()

    def get_attribute(self, name):
        return self._element.get_attribute(name)

    @property
    def text(self):
        return self._element.text


class FirefoxDriver:
    """One headless Firefox with its own profile; the selenium-like calls Page makes."""

    def __init__(self, profile, width=1280, height=800, display=None, startup_timeout=90):
        self.profile = profile
        port = free_port()
        with open(os.path.join(profile, "user.js"), "w") as prefs:
            prefs.write(_pref_line("marionette.port", port))
            for name, value in PREFS.items():
                prefs.write(_pref_line(name, value))
        self.log_path = os.path.join(tempfile.gettempdir(), f"meshnode-firefox-{os.getpid()}-{port}.log")
        self._log = open(self.log_path, "w")
        environment = dict(os.environ, MOZ_HEADLESS="1", MOZ_HEADLESS_WIDTH=str(width), MOZ_HEADLESS_HEIGHT=str(height))
        # Headless Firefox draws no screen of its own; getDisplayMedia captures the X server
        # named here (an Xvfb), and fails with NotFoundError without one.
        environment.pop("DISPLAY", None)
        if display:
            environment["DISPLAY"] = display
        # Its own process group: quit() ends Firefox's content processes with it.
        self.process = subprocess.Popen(
            [FIREFOX, "--marionette", "--headless", "--no-remote", "-profile", profile, "about:blank"],
            stdout=self._log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
        self.marionette = None
        self._script_timeout = 30
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"firefox exited with {self.process.returncode}: {self._log_tail()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"firefox's Marionette did not listen on {port} within {startup_timeout} s: {self._log_tail()}")
                    time.sleep(0.2)
            self.marionette = Marionette(host="127.0.0.1", port=port, socket_timeout=max(60, startup_timeout))
            self.marionette.start_session(timeout=startup_timeout)
        except Exception:
            self.quit()
            raise

    def _log_tail(self):
        try:
            with open(self.log_path) as log:
                return log.read()[-1500:]
        except OSError:
            return ""

    def set_script_timeout(self, seconds):
        self._script_timeout = seconds
        self.marionette.timeout.script = seconds

    def get(self, url):
        self.marionette.navigate(url)

    def refresh(self):
        self.marionette.refresh()

    def execute_script(self, script, *args):
        return self.marionette.execute_script(script, script_args=list(args), sandbox=None, new_sandbox=False)

    def execute_async_script(self, script, *args):
        return self.marionette.execute_async_script(script, script_args=list(args), sandbox=None, new_sandbox=False)

    def find_element(self, _by, css):
        return Element(self.marionette.find_element(By.CSS_SELECTOR, css))

    def find_elements(self, _by, css):
        return [Element(e) for e in self.marionette.find_elements(By.CSS_SELECTOR, css)]

    def save_screenshot(self, path):
        data = self.marionette.screenshot(format="base64", full=False)
        with open(path, "wb") as out:
            out.write(base64.b64decode(data))
        return True

    def get_log(self, _kind):
        # Marionette has no console log endpoint; Firefox's own output holds the page's errors.
        return [{"level": "firefox", "message": line} for line in self._log_tail().splitlines()[-20:]]

    def quit(self):
        try:
            if self.marionette is not None and self.marionette.session is not None:
                self.marionette.delete_session()
        except Exception:  # noqa: BLE001 - Firefox is ended below either way
            pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)
        self._log.close()
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


def firefox_available():
    return shutil.which(FIREFOX) is not None or os.access(FIREFOX, os.X_OK)
