#!/usr/bin/env bash
# make bench: the Go microbenchmarks and the end-to-end runs, then
# bench/results.md and bench/throughput.svg rewritten. bench/REPORT.md holds
# the hand-written analysis and is never touched.
#
# End-to-end runs pin each server to CPU 0 and the load tool to CPU 1
# (taskset), run the servers in turn inside each round, and repeat rounds,
# so every ratio compares numbers measured side by side; the report gives
# medians. Bounded: about 9 minutes on the 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"      # microbenchmark runs
ROUNDS="${ROUNDS:-3}"  # end-to-end rounds
DUR="${DUR:-4s}"
scripts/deps.sh
mkdir -p bin
go build -o bin/benchserver ./bench/benchserver
go build -o bin/echoserver ./bench/echoserver
go build -o bin/mqantbench ./bench/mqantbench
go build -o bin/rabbitbroker ./internal/testkit/rabbittest/cmd/rabbitbroker

work="$(mktemp -d /tmp/mqant-bench.XXXXXX)"
raw="$work/micro.txt"
e2e="$work/e2e.jsonl"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# --- microbenchmarks ---
micro="go test -run NONE -bench . -benchmem -count 1 ./bench/benchmod ./gate/packets ./core/rabbitmq"
# The gate round trip with and without the per-call metrics, side by side.
gatemicro="go test -run NONE -bench GateRoundTrip -benchmem -count 1 ./gate"
# Persistent sessions: memory per kept push, a push to a clean vs a
# persistent session (issue 13).
persistmicro="go test -run NONE -bench BenchmarkSessionQueue|BenchmarkPush(Clean|Persistent) -benchmem -count 1 ./gate"
for i in $(seq "$RUNS"); do
	echo "bench: microbenchmarks, run $i/$RUNS" >&2
	$micro >>"$raw"
	$gatemicro >>"$raw"
	$persistmicro >>"$raw"
done

# --- end to end ---
PORT=4563
PAYLOAD='{"n":1,"text":"hello"}'
TOPIC=Echo/Handler_Work
MOSQ_PORT=4583

start() { # start NAME CMD...: a server pinned to CPU 0, waits for its port
	taskset -c 0 "${@:2}" >"$work/$1.log" 2>&1 &
	srv=$!
	for _ in $(seq 200); do
		(exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0
		sleep 0.05
	done
	echo "bench: $1 did not start" >&2; cat "$work/$1.log" >&2; exit 1
}
stop() { kill -INT "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; }
load() { # load LABEL ROUND ARGS...: one mqantbench run, its JSON summary appended
	local label=$1 round=$2; shift 2
	local out
	out=$(taskset -c 1 bin/mqantbench -quiet -json -duration "$DUR" -warmup 1s "$@" 2>/dev/null | tr -d '\n')
	echo "{\"label\":\"$label\",\"round\":$round,\"summary\":$out}" >>"$e2e"
}
mosq_conf="$work/mosquitto.conf"
printf 'allow_anonymous true\npersistence false\nlistener %s 127.0.0.1\nmax_queued_messages 100000\n' "$MOSQ_PORT" >"$mosq_conf"

for r in $(seq "$ROUNDS"); do
	echo "bench: end-to-end round $r/$ROUNDS" >&2
	port=$PORT; start echo bin/echoserver -tcp 127.0.0.1:$PORT -ws ""
	for c in 10 100 1000; do load "echo/$c/1" "$r" -url tcp://127.0.0.1:$PORT -conns $c -sources 2 -topic $TOPIC -payload "$PAYLOAD"; done
	load "echo/100/8" "$r" -url tcp://127.0.0.1:$PORT -conns 100 -inflight 8 -topic $TOPIC -payload "$PAYLOAD"
	stop
	port=$PORT; start gate bin/benchserver -tcp 127.0.0.1:$PORT
	for c in 10 100 1000; do load "gate/$c/1" "$r" -url tcp://127.0.0.1:$PORT -conns $c -sources 2 -topic $TOPIC -payload "$PAYLOAD"; done
	load "gate/100/8" "$r" -url tcp://127.0.0.1:$PORT -conns 100 -inflight 8 -topic $TOPIC -payload "$PAYLOAD"
	# p99 at half the load the gate just sustained with 1000 connections.
	max=$(tail -n 5 "$e2e" | grep '"label":"gate/1000/1"' | sed 's/.*"throughput": *\([0-9.]*\).*/\1/')
	half=$(awk -v m="$max" 'BEGIN { printf "%d", m/2 }')
	load "gate/1000/half" "$r" -url tcp://127.0.0.1:$PORT -conns 1000 -sources 2 -rate "$half" -topic $TOPIC -payload "$PAYLOAD"
	stop
	# The same gate with the per-call metrics off: what metrics cost.
	port=$PORT; start gate-nometrics bin/benchserver -tcp 127.0.0.1:$PORT -metrics=false
	load "gate-nometrics/1000/1" "$r" -url tcp://127.0.0.1:$PORT -conns 1000 -sources 2 -topic $TOPIC -payload "$PAYLOAD"
	load "gate-nometrics/100/8" "$r" -url tcp://127.0.0.1:$PORT -conns 100 -inflight 8 -topic $TOPIC -payload "$PAYLOAD"
	stop
	port=$MOSQ_PORT; start mosquitto /usr/sbin/mosquitto -c "$mosq_conf"
	for c in 10 100 1000; do load "mosquitto/$c/1" "$r" -mode rt -url tcp://127.0.0.1:$MOSQ_PORT -conns $c -sources 2 -payload "$PAYLOAD"; done
	load "mosquitto/100/8" "$r" -mode rt -url tcp://127.0.0.1:$MOSQ_PORT -conns 100 -inflight 8 -payload "$PAYLOAD"
	stop
done

echo "bench: idle connections and broadcast" >&2
port=$PORT; start gate bin/benchserver -tcp 127.0.0.1:$PORT
taskset -c 1 bin/mqantbench -quiet -json -mode idle -url tcp://127.0.0.1:$PORT -conns 10000 -sources 4 -duration 5s -pid "$srv" 2>/dev/null | tr -d '\n' |
	sed 's/^/{"label":"idle\/10000","round":1,"summary":/; s/$/}/' >>"$e2e"
echo >>"$e2e"
stop
port=$PORT; start gate bin/benchserver -tcp 127.0.0.1:$PORT
load "broadcast/1000" 1 -mode broadcast -url tcp://127.0.0.1:$PORT -conns 1000 -sources 2 -rate 300
stop

echo "bench: gate with modules behind RabbitMQ" >&2
bin/rabbitbroker -dir "$work/broker" -port 4672 >"$work/broker.log" 2>&1 &
pids+=($!)
port=4672
for _ in $(seq 1200); do (exec 3<>/dev/tcp/127.0.0.1/4672) 2>/dev/null && break; sleep 0.1; done
URI=amqp://guest:guest@127.0.0.1:4672/
bin/benchserver -rabbit $URI -role modules -tcp "" >"$work/modules.log" 2>&1 &
mods=$!
pids+=($mods)
port=$PORT; start gate-rabbit bin/benchserver -rabbit $URI -role gate -tcp 127.0.0.1:$PORT
for r in $(seq "$ROUNDS"); do
	load "gate-rabbit/100/8" "$r" -url tcp://127.0.0.1:$PORT -conns 100 -inflight 8 -topic $TOPIC -payload "$PAYLOAD"
done
stop
kill -INT "$mods"; wait "$mods" 2>/dev/null || true

mkdir -p bench/raw
cp "$raw" bench/raw/micro.txt
cp "$e2e" bench/raw/e2e.jsonl
go run ./bench/benchreport -in bench/raw/micro.txt -e2e bench/raw/e2e.jsonl -out bench/results.md -svg bench/throughput.svg \
	-cmd "scripts/bench.sh (RUNS=$RUNS ROUNDS=$ROUNDS DUR=$DUR)"
