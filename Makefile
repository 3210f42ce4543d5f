GO      ?= go
RACE    ?= -race
# Each fuzz target runs for FUZZTIME in make test (eight targets: about 80 s
# plus compiling) and for FUZZTIME_LONG in make fuzz.
FUZZTIME ?= 10s
FUZZTIME_LONG ?= 5m
# In the short run a new interesting input is minimized for at most
# FUZZMINTIME (go test's default is 60 s): a minimization still running
# when the fuzz time ends fails the run with "context deadline exceeded"
# and no input (seen twice in a row in CI for FuzzRead on 1 December).
FUZZMINTIME ?= 1s
# package:target, one per decoder of outside input.
FUZZ_TARGETS := gate/packets:FuzzDecode core/rabbitmq:FuzzEnvelope core:FuzzParseConfig internal/wsconn:FuzzRead core/coregen:FuzzFlatArg core:FuzzAppendJSONString core:FuzzDecodeSessionFast core/coregen:FuzzPlainStringArgs

.PHONY: soak run run-cluster test test-netns deps vet check-generated generate unit fuzz-short fuzz bench lint build

## run: start the chat demo (gate :3563 TCP, :3653 WebSocket, web client on :8080)
run:
	$(GO) run ./demo/server -conf demo/conf/server.conf

## test-netns: the demo across two network-namespace hosts and a broker host (needs root; opt-in)
test-netns: deps
	$(GO) test -tags netns -count=1 -v -run AcrossHosts ./demo/server

## run-cluster: the demo as four processes (two gates, Login, Chat) over a private RabbitMQ on :5673
run-cluster:
	scripts/run-cluster.sh

## test: install what the tests need, then vet, check generated code, run every test and a short fuzz
test: deps ts-deps lint check-generated unit fuzz-short

deps:
	@scripts/deps.sh

.PHONY: test-csharp
## test-csharp: the C# SDK tests alone: compile with mcs -langversion:7.2, run with mono against the demo gate
test-csharp: deps
	$(GO) test $(RACE) -count=1 -run CSharp ./internal/gen ./internal/testkit/csharptest

# The pinned TypeScript tools (tsc, MQTT.js and Node typings) the client SDK
# tests check the generated TypeScript with.
TS_TOOLS := internal/gen/testdata/ts

## ts-deps: install the pinned tsc for the SDK tests (npm ci) when missing or older than the lockfile
ts-deps:
	@if [ ! -x $(TS_TOOLS)/node_modules/.bin/tsc ] || [ $(TS_TOOLS)/package-lock.json -nt $(TS_TOOLS)/node_modules/.package-lock.json ]; then \
		command -v npm >/dev/null 2>&1 || { echo "ts-deps: npm is missing: install Node.js (20 or later) and npm"; exit 1; }; \
		echo "ts-deps: npm ci --prefix $(TS_TOOLS)"; \
		npm ci --prefix $(TS_TOOLS) --no-audit --no-fund; \
	fi

vet:
	$(GO) vet ./...

## check-generated: fail when generated code is stale (run make generate to fix)
check-generated:
	MQANTGEN_CHECK=1 $(GO) generate ./...

generate:
	$(GO) generate ./...

unit:
	$(GO) test $(RACE) -count=1 -timeout 20m ./...
	@# Allocation guards again without the race detector, which makes
	@# sync.Pool drop items and so counts allocations the real build avoids.
	$(GO) test -count=1 -run 'Allocs' ./gate/... ./core

# go test fuzzes one target of one package at a time. The seed corpus
# (f.Add and testdata/fuzz/) runs first, so a regression fails at once.
# When the fuzz time runs out while a worker is busy, go test can fail with
# only "context deadline exceeded" and no failing input (seen on a loaded
# 2-core machine): that run is repeated once; a real finding (a "Failing
# input" written to testdata/fuzz) fails at once.
fuzz_each = for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t\#\#*:}; \
		echo "fuzz: $$fn in ./$$pkg for $(1)"; \
		out=$$(mktemp); \
		if ! $(GO) test -run=NONE -fuzz="^$$fn\$$" -fuzztime=$(1) $(2) ./$$pkg >$$out 2>&1; then \
			cat $$out; \
			if grep -q "context deadline exceeded" $$out && ! grep -q "Failing input" $$out; then \
				echo "fuzz: $$fn stopped on its deadline without a finding; running it again"; \
				$(GO) test -run=NONE -fuzz="^$$fn\$$" -fuzztime=$(1) $(2) ./$$pkg || { rm -f $$out; exit 1; }; \
			else rm -f $$out; exit 1; fi; \
		else cat $$out; fi; \
		rm -f $$out; \
	done

## fuzz-short: each decoder's seed corpus plus FUZZTIME of fuzzing (part of make test)
fuzz-short:
	@$(call fuzz_each,$(FUZZTIME),-fuzzminimizetime=$(FUZZMINTIME))

## fuzz: fuzz every decoder (MQTT codec, RPC envelope, config, WebSocket) for FUZZTIME_LONG each
fuzz:
	@$(call fuzz_each,$(FUZZTIME_LONG))

SOAK_DURATION ?= 5m
SOAK_CONNS    ?= 2000
SOAK_RATE     ?= 200
SOAK_WARMUP   ?= 60s

## soak: opt-in, not in make test: the demo under SOAK_CONNS chatting clients for SOAK_DURATION, its RSS, goroutines and fds sampled into bench/soak.md and bench/soak.svg
soak:
	$(GO) build -o bin/server ./demo/server
	$(GO) run ./bench/soak -server bin/server -conns $(SOAK_CONNS) -rate $(SOAK_RATE) -duration $(SOAK_DURATION) -warmup $(SOAK_WARMUP) -out bench/soak.md -svg bench/soak.svg

## bench: run the benchmarks and rewrite bench/results.md
bench:
	scripts/bench.sh

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

build:
	$(GO) build ./...
