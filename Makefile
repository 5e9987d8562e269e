# meshnode — quick start: `make run` (a node on localhost) and `make test` (every test).
# Both install the Debian packages that are missing first (as root, or through sudo).

SHELL := /bin/bash
SWIFT ?= swift
export PATH := /opt/swift/usr/bin:$(PATH)

# Build and test dependencies from Debian.
DEBIAN_PACKAGES := pkg-config libssl-dev libglib2.0-dev libnice-dev libsrtp2-dev libopus-dev \
                   libvpx-dev libsodium-dev libjemalloc-dev libxcb1-dev libxcb-shm0-dev coturn ca-certificates gcc libc6-dev \
                   python3 xvfb x11-xserver-utils ffmpeg nftables
FUZZ_RUNS ?= 200000
# Where the fuzz build goes: a folder of its own, so that `make fuzz` leaves the normal build
# alone. CI fuzzes last and passes FUZZ_SCRATCH=.build: the instrumented build then reuses the
# dependencies (SwiftNIO, Hummingbird, BoringSSL, SQLite) that `make test` compiled.
FUZZ_SCRATCH ?= .build-fuzz
# The independent WebRTC peer of the transport interop test (Tests/Interop/aiortc_peer.py).
AIORTC_VERSION := 1.16.0
# Test-only: headless Chromium and its WebDriver for the web page's tests (Tests/Browser, docs/web.md),
# driven from Python with selenium (newer selenium needs a certifi newer than the registry has).
TEST_DEBIAN_PACKAGES := chromium chromium-driver libnss3-tools curl openssl
SELENIUM_VERSION := 4.40.0
# axe-core 4.9 for the page's accessibility check (Tests/Browser, `page a11y`), bundled in this package.
AXE_PACKAGE_VERSION := 2.2.0
# Test-only: two more independent peers (issue 18, docs/interop.md): the page in Firefox ESR,
# driven through Marionette (PyPI marionette-driver; Debian packages no geckodriver), and
# GStreamer's webrtcbin from Debian's own python3 (Tests/Interop/webrtcbin_peer.py).
TEST_DEBIAN_PACKAGES += firefox-esr gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
                        gstreamer1.0-nice python3-gi python3-gst-1.0 gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 \
                        gir1.2-gst-plugins-bad-1.0 python3-websockets python3-cryptography
MARIONETTE_VERSION := 3.7.1

.PHONY: cluster-deps cluster test-cluster embed-web install check-layers deps test-deps aiortc-deps build release run test fuzz bench bench-transport bench-signaling bench-signaling-deps bench-media bench-calls bench-rooms bench-rooms-deps testnet testnet-quick testnet-build testnet-mesh clean

deps:
	@scripts/install-missing-packages --disable coturn $(DEBIAN_PACKAGES)

build: deps embed-web
	$(SWIFT) build

release: deps embed-web
	$(SWIFT) build -c release

# The page (web/) embedded in the binary as Swift source (Sources/MeshNode/WebPage+Files.swift,
# checked in); WebPageEmbeddingTests fail when it differs from web/.
embed-web:
	scripts/embed-web

# `make install PREFIX=/usr/local DESTDIR=/tmp/root` (docs/deploy.md): the release binary, the
# hardened systemd unit, the example config (every setting commented, from the settings table;
# an existing meshnode.yaml is kept, meshnode.yaml.example is always fresh) and docs/deploy.md.
# BINARY=.build/debug/meshnode installs another build (the tests install the debug one).
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR = $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR = $(PREFIX)/share/doc/meshnode
INSTALL_BINARY = $(or $(BINARY),.build/release/meshnode)
install: $(if $(BINARY),,release)
	install -D -m 0755 $(INSTALL_BINARY) $(DESTDIR)$(BINDIR)/meshnode
	install -d -m 0755 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/meshnode
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
	  deploy/meshnode.service.in > $(DESTDIR)$(UNITDIR)/meshnode.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/meshnode.service
	$(INSTALL_BINARY) serve --print-example-config > $(DESTDIR)$(SYSCONFDIR)/meshnode/meshnode.yaml.example
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/meshnode/meshnode.yaml ]; then \
	  echo "kept $(DESTDIR)$(SYSCONFDIR)/meshnode/meshnode.yaml (new keys: meshnode.yaml.example)"; \
	else install -m 0644 $(DESTDIR)$(SYSCONFDIR)/meshnode/meshnode.yaml.example $(DESTDIR)$(SYSCONFDIR)/meshnode/meshnode.yaml; fi
	install -D -m 0644 docs/deploy.md $(DESTDIR)$(DOCDIR)/deploy.md

# A node with embedded defaults on localhost: STUN/TURN on 3478 (UDP, TCP), TLS on 5349,
# the web page (web/) at http://127.0.0.1:8080/, /status and /metrics.
run: build
	.build/debug/meshnode serve $(ARGS)

# aiortc, the independent WebRTC peer of the interop tests and the call benchmark's reference.
aiortc-deps:
	@python3 -c "import aiortc, sys; sys.exit(aiortc.__version__ != '$(AIORTC_VERSION)')" 2>/dev/null || \
	  python3 -m pip install --quiet --disable-pip-version-check "aiortc==$(AIORTC_VERSION)" || \
	  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "aiortc==$(AIORTC_VERSION)"

# Test-only tools: Chromium, Firefox ESR and GStreamer from Debian; aiortc, selenium and
# marionette-driver from PyPI, pinned (each interop suite is skipped with a message naming what
# is missing).
test-deps: deps aiortc-deps
	@scripts/install-missing-packages $(TEST_DEBIAN_PACKAGES)
	@python3 -c "import selenium, sys; sys.exit(selenium.__version__ != '$(SELENIUM_VERSION)')" 2>/dev/null || \
	  python3 -m pip install --quiet --disable-pip-version-check "selenium==$(SELENIUM_VERSION)" || \
	  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "selenium==$(SELENIUM_VERSION)"
	@python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('selenium-axe-python') != '$(AXE_PACKAGE_VERSION)')" 2>/dev/null || \
	  python3 -m pip install --quiet --disable-pip-version-check --no-deps "selenium-axe-python==$(AXE_PACKAGE_VERSION)" || \
	  python3 -m pip install --quiet --disable-pip-version-check --no-deps --break-system-packages "selenium-axe-python==$(AXE_PACKAGE_VERSION)"
	@python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('marionette_driver') != '$(MARIONETTE_VERSION)')" 2>/dev/null || \
	  python3 -m pip install --quiet --disable-pip-version-check "marionette-driver==$(MARIONETTE_VERSION)" || \
	  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "marionette-driver==$(MARIONETTE_VERSION)"

# Tests run one at a time: on 2 cores the codec tests' CPU and the subprocess tests' blocking
# waits starve Swift's cooperative pool. No test depends on timing (they wait for events with
# generous deadlines, Tests/TestSupport), so a loaded machine makes them slower, never red.
test: test-deps check-layers embed-web
	$(SWIFT) build --build-tests
	$(SWIFT) test --no-parallel

# Every import under Sources/ against the layer table of docs/architecture.md.
check-layers:
	scripts/check-layers

# Coverage-guided fuzzing (libFuzzer), FUZZ_RUNS iterations per target: the STUN/ChannelData
# parsers, the RFC 7983 demultiplexer with what it feeds (DTLS records, SRTP/SRTCP), and the
# RTP/RTCP header parsers, and the signaling message decoder (JSON frames from clients and links).
fuzz: deps
	MESHNODE_FUZZ=1 $(SWIFT) build --scratch-path $(FUZZ_SCRATCH) --product fuzz-stun
	MESHNODE_FUZZ=1 $(SWIFT) build --scratch-path $(FUZZ_SCRATCH) --product fuzz-demux
	MESHNODE_FUZZ=1 $(SWIFT) build --scratch-path $(FUZZ_SCRATCH) --product fuzz-rtp
	MESHNODE_FUZZ=1 $(SWIFT) build --scratch-path $(FUZZ_SCRATCH) --product fuzz-sdp
	MESHNODE_FUZZ=1 $(SWIFT) build --scratch-path $(FUZZ_SCRATCH) --product fuzz-signaling
	mkdir -p fuzz/corpus-work/stun fuzz/corpus-work/demux fuzz/corpus-work/rtp fuzz/corpus-work/sdp fuzz/corpus-work/signaling
	$(FUZZ_SCRATCH)/debug/fuzz-stun -runs=$(FUZZ_RUNS) -max_len=2048 -timeout=10 fuzz/corpus-work/stun fuzz/corpus/stun
	$(FUZZ_SCRATCH)/debug/fuzz-demux -runs=$(FUZZ_RUNS) -max_len=1500 -timeout=10 fuzz/corpus-work/demux
	$(FUZZ_SCRATCH)/debug/fuzz-rtp -runs=$(FUZZ_RUNS) -max_len=1500 -timeout=10 fuzz/corpus-work/rtp
	$(FUZZ_SCRATCH)/debug/fuzz-sdp -runs=$(FUZZ_RUNS) -max_len=8192 -timeout=10 fuzz/corpus-work/sdp Tests/SDPTests/Fixtures
	$(FUZZ_SCRATCH)/debug/fuzz-signaling -runs=$(FUZZ_RUNS) -max_len=4096 -timeout=10 fuzz/corpus-work/signaling fuzz/corpus/signaling

# Signaling benchmark client tools from PyPI, pinned (bench/signaling/README.md).
WEBSOCKETS_VERSION := 15.0.1
PYNACL_VERSION := 1.6.2
bench-signaling-deps:
	@python3 -c "import websockets, nacl, sys; sys.exit(websockets.__version__ != '$(WEBSOCKETS_VERSION)' or nacl.__version__ != '$(PYNACL_VERSION)')" 2>/dev/null || \
	  python3 -m pip install --quiet --disable-pip-version-check "websockets==$(WEBSOCKETS_VERSION)" "pynacl==$(PYNACL_VERSION)" || \
	  python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "websockets==$(WEBSOCKETS_VERSION)" "pynacl==$(PYNACL_VERSION)"

# Throughput and latency against coturn in the same run (prints ratios); not a test.
bench: deps release bench-signaling-deps aiortc-deps
	bench/run $(BENCH_ARGS)
	bench/transport/run
	bench/signaling/run --meshnode .build/release/meshnode $(SIGBENCH_ARGS)
	bench/media/run $(MEDIABENCH_ARGS)
	bench/calls/run $(CALLBENCH_ARGS)

# Opus and VP8 encode/decode speed and RTP packetization with our Swift code (release
# `media-bench`) against ffmpeg's libopus and libvpx on the same input; see bench/README.md.
bench-media: deps
	bench/media/run $(MEDIABENCH_ARGS)

# Signaling over WebSocket (issue 17): memory per idle connection next to a plain NIO echo
# server (the floor), routed chat/s and p99 with the store in memory and on disk, from a C load
# client; release builds in .build-release (not the debug .build); see bench/signaling/README.md.
bench-signaling: deps embed-web
	bench/signaling/run $(SIGBENCH_ARGS)

# Calls CLI <-> CLI through a release node against two aiortc peers: setup time, end-to-end video
# latency, CPU per call-second (about 2 minutes); see bench/README.md ("Calls").
bench-calls: deps aiortc-deps
	$(SWIFT) build -c release --product meshnode
	bench/calls/run $(CALLBENCH_ARGS)

# Room calls (issue 16): forwarded packets per CPU second and memory per participant on one
# node, rooms of 5, 10 and 20 participants, against Janus's VideoRoom (Debian's janus, run
# privately by the bench; the packaged service is disabled) in the same run, inside a network
# namespace of the bench's own (root); release build in .build-release; about 10 minutes,
# ROOMBENCH_ARGS=--quick about 2. See bench/rooms/README.md. Not a test, not in CI.
bench-rooms-deps: deps
	@scripts/install-missing-packages --disable janus janus

bench-rooms: bench-rooms-deps embed-web
	$(SWIFT) build -c release --scratch-path .build-release --product room-bench
	bench/rooms/run $(ROOMBENCH_ARGS)

# SRTP (libsrtp2 against OpenSSL EVP), DTLS handshake and ICE connect times; see bench/transport.
bench-transport: deps
	bench/transport/run

# The NAT testnet (network namespaces; root; docs/testnet.md): selftest (up, checks, both
# RFC 5780 verifications, down), the full traversal matrix (docs/nat-matrix.md) and every
# fault scenario, about 8 minutes. testnet-quick (CI, about 3 minutes): selftest, five
# representative pairs and the quick faults; both end with the TCP-443-only browser call
# (testnet/strict-firewall; Chromium and selenium from test-deps) and the forwarder's failover
# (testnet/forwarder-failover, about 20 s). Only the meshnode product is built.
testnet-build: deps
	$(SWIFT) build --product meshnode

testnet: testnet-build test-deps
	testnet/all

testnet-quick: testnet-build test-deps
	testnet/all --quick

# The mesh scenarios of issue 8 (docs/mesh.md), quick version; `testnet/mesh` runs them all.
testnet-mesh: build
	testnet/mesh --quick

# Cluster mode (docs/cluster.md): Debian's PostgreSQL, run privately by testnet/cluster (the
# packaged service is disabled). `make cluster`: PostgreSQL and three members on loopback until
# Ctrl-C. `make test-cluster` (CI, about four minutes): the store's writer and `room_calls` against
# a private PostgreSQL (SignalingClusterTests), then chat, presence and a call across members,
# then kill -9 of a member: failover within 5 s, zero acknowledged messages lost; then a room
# call of three CLIs on three members and the CLI's failover to a member it learnt; last, a
# forwarded room call of three CLIs on three members through the host member's forwarder, the
# page (Chromium) in one with CLIs at two other members, and a participant's member killed (its
# ICE restart reaches the host's forwarder through the member it logged in at; nftables).
CLUSTER_DEBIAN_PACKAGES := postgresql python3-cryptography
cluster-deps: deps
	@scripts/install-missing-packages --disable postgresql $(CLUSTER_DEBIAN_PACKAGES)

cluster: build cluster-deps
	testnet/cluster --serve

test-cluster: build cluster-deps test-deps
	$(SWIFT) build --build-tests
	testnet/cluster --run $(SWIFT) test --skip-build --no-parallel --filter SignalingClusterTests
	testnet/cluster

clean:
	rm -rf .build .build-fuzz fuzz/corpus-work
