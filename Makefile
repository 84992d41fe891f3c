# trawl's front door. `make serve` sets up and runs the server; `make check`
# runs every test. Both install missing Debian packages first.
JOBS      ?= 2
RELEASE   := build/release
ASAN      := build/asan
CLANG     := build/clang
FUZZ      := build/fuzz
DATA      ?= ./var
LISTEN    ?= 127.0.0.1:8080
PYTHON    := /usr/bin/python3
FUZZ_SECONDS ?= 20

.PHONY: all deps release asan clang fuzz serve check unit e2e browser fuzz-smoke bench clean

all: release

deps:
	@bash scripts/install-deps.sh

release:
	cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release -DTRAWL_TESTS=OFF >/dev/null
	cmake --build $(RELEASE) -j$(JOBS)

asan:
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DTRAWL_SANITIZE=ON >/dev/null
	cmake --build $(ASAN) -j$(JOBS)

# The tree must also build warning-free with clang.
clang:
	CC=clang CXX=clang++ cmake -S . -B $(CLANG) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(CLANG) -j$(JOBS)

fuzz:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ) -DCMAKE_BUILD_TYPE=Debug -DTRAWL_FUZZ=ON -DTRAWL_TESTS=OFF >/dev/null
	cmake --build $(FUZZ) -j$(JOBS)

serve: deps release
	$(RELEASE)/trawl --data $(DATA) serve --listen $(LISTEN)

unit: asan
	cd $(ASAN) && ctest --output-on-failure -j$(JOBS)

e2e: asan
	TRAWL_BIN=$(abspath $(ASAN))/trawl $(PYTHON) -m pytest -q tests/e2e

# The web UI in Debian's chromium, driven by playwright-core (from npm).
browser: asan
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	cd tests/browser && TRAWL_BIN=$(abspath $(ASAN))/trawl node --test --test-concurrency=1 .

# Each fuzz target runs briefly on its seed corpus: a smoke test, not a campaign.
fuzz-smoke: fuzz
	bash fuzz/run.sh $(FUZZ) $(FUZZ_SECONDS)

check: deps
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) browser
	$(MAKE) release
	$(MAKE) clang
	$(MAKE) fuzz-smoke

clean:
	rm -rf build
