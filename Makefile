# meshnode — quick start: `make run` (a node on localhost) and `make test` (every test).
# Both install the Debian packages that are missing first (as root, or through sudo).

SHELL := /bin/bash
SWIFT ?= swift
export PATH := /opt/swift/usr/bin:$(PATH)

# Build and test dependencies from Debian.
DEBIAN_PACKAGES := pkg-config libssl-dev libglib2.0-dev libnice-dev libsrtp2-dev libopus-dev \
                   libvpx-dev libsodium-dev libxcb1-dev libxcb-shm0-dev coturn ca-certificates gcc libc6-dev \
                   python3 xvfb x11-xserver-utils ffmpeg
FUZZ_RUNS ?= 200000

.PHONY: deps build release run test fuzz bench clean

deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	  $$SUDO systemctl disable --now coturn >/dev/null 2>&1 || true; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# A node with embedded defaults on localhost: STUN/TURN on 3478 (UDP, TCP), TLS on 5349,
# web page and /metrics on http://127.0.0.1:8080/.
run: build
	.build/debug/meshnode serve $(ARGS)

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

# Coverage-guided fuzzing of the STUN/ChannelData parsers (libFuzzer), FUZZ_RUNS iterations.
fuzz: deps
	MESHNODE_FUZZ=1 $(SWIFT) build --scratch-path .build-fuzz --product fuzz-stun
	mkdir -p fuzz/corpus-work
	.build-fuzz/debug/fuzz-stun -runs=$(FUZZ_RUNS) -max_len=2048 -timeout=10 fuzz/corpus-work fuzz/corpus/stun

# Throughput and latency against coturn in the same run (prints ratios); not a test.
bench: deps release
	bench/run $(BENCH_ARGS)

clean:
	rm -rf .build .build-fuzz fuzz/corpus-work
