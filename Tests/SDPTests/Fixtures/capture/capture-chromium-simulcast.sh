#!/usr/bin/env bash
# Captures what Debian's chromium (apt-get install chromium) does with simulcast: its answer to
# meshnode's forwarder offer (forwarder-simulcast-offer.sdp, which `swift test --filter
# SimulcastSDPTests` checks is what JSEPOffer.makeForwarded writes), the encodings it then sends,
# its own simulcast offer, and the rids it sends on the wire to a second RTCPeerConnection.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
version="$(chromium --version 2>/dev/null | awk '{print $2}' | cut -d. -f1)"
python3 - "$here" "$work" <<'PY'
import json, sys
here, work = sys.argv[1], sys.argv[2]
offer = open(f"{here}/../forwarder-simulcast-offer.sdp", newline="").read()
page = open(f"{here}/capture-simulcast.html").read().replace("FORWARDER_OFFER", json.dumps(offer))
open(f"{work}/page.html", "w").write(page)
PY
timeout 30 chromium --headless=new --no-sandbox --use-fake-device-for-media-stream --use-fake-ui-for-media-stream \
    --allow-loopback-in-peer-connection --enable-logging=stderr --v=0 --user-data-dir="$work/profile" "file://$work/page.html" 2> "$work/log" || true
python3 - "$work/log" "$here/.." "$version" <<'PY'
import json, re, sys
log, out, version = sys.argv[1], sys.argv[2], sys.argv[3]
match = re.search(r'"CAPTURE-SIMULCAST (\{.*\})", source', open(log).read())
if not match:
    sys.exit("no CAPTURE-SIMULCAST line in the chromium log")
data = json.loads(match.group(1))
if "error" in data:
    sys.exit("the page failed: " + data["error"])
open(f"{out}/chromium{version}-captured-simulcast-answer.sdp", "w", newline="").write(data["answer"])
open(f"{out}/chromium{version}-captured-simulcast-offer.sdp", "w", newline="").write(data["offer"])
json.dump({"encodingsAfterOffer": data["encodingsAfterOffer"], "outbound": data["outbound"]},
          open(f"{out}/chromium{version}-captured-simulcast-wire.json", "w"), indent=1)
print(json.dumps({"encodingsAfterOffer": data["encodingsAfterOffer"], "outbound": data["outbound"]}))
PY
