#!/usr/bin/env bash
# Captures a real offer (before and after ICE gathering) and answer from Debian's chromium
# (apt-get install chromium) into the Fixtures folder: two RTCPeerConnections in one headless
# page, fake camera and microphone; the page logs the SDPs as JSON on the console.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
version="$(chromium --version 2>/dev/null | awk '{print $2}' | cut -d. -f1)"
# Headless Chromium never exits on its own with a page open; 25 s is ample for host gathering.
timeout 25 chromium --headless=new --no-sandbox --use-fake-device-for-media-stream --use-fake-ui-for-media-stream \
    --enable-logging=stderr --v=0 --user-data-dir="$work/profile" "file://$here/capture.html" 2> "$work/log" || true
python3 - "$work/log" "$here/.." "$version" <<'PY'
import json, re, sys
log, out, version = sys.argv[1], sys.argv[2], sys.argv[3]
match = re.search(r'"CAPTURE (\{.*\})", source', open(log).read())
if not match:
    sys.exit("no CAPTURE line in the chromium log")
data = json.loads(match.group(1))
names = {"offer": "offer", "offerGathered": "offer-gathered", "answerGathered": "answer"}
for key, name in names.items():
    open(f"{out}/chromium{version}-captured-{name}.sdp", "w", newline="").write(data[key])
PY
