#!/usr/bin/env bash
# make run-cluster: the chat demo as four processes (two gates, Login, Chat)
# sharing a private RabbitMQ broker. A process that exits is restarted after
# a short backoff while the others keep serving; Ctrl+C (SIGINT) or SIGTERM
# stops everything in reverse order of start, the broker last.
#
# Ports and places, overridable from the environment (tests use free ones):
#   BROKER_PORT (5673)  GATE1_TCP (3563)  GATE1_WS (3653)
#   GATE2_TCP (3564)    GATE2_WS (3654)   WEB_ADDR (127.0.0.1:8080; empty: none)
#   ADMIN_ADDR (127.0.0.1:8686; empty: none): gate1's admin listener, with
#   /metrics and the console of the whole cluster at /console/
#   CLUSTER_DIR (a new /tmp/mqant-cluster.XXXXXX; removed at exit)
#   CLUSTER_BIN (bin: where the binaries are built)
#   RESTART_BACKOFF (1: seconds before the first restart; doubles while a
#   process keeps dying within 10 s of its start, at most 10)
set -euo pipefail
cd "$(dirname "$0")/.."

BROKER_PORT=${BROKER_PORT:-5673}
GATE1_TCP=${GATE1_TCP:-3563}
GATE1_WS=${GATE1_WS:-3653}
GATE2_TCP=${GATE2_TCP:-3564}
GATE2_WS=${GATE2_WS:-3654}
WEB_ADDR=${WEB_ADDR-127.0.0.1:8080}
ADMIN_ADDR=${ADMIN_ADDR-127.0.0.1:8686}
CLUSTER_BIN=${CLUSTER_BIN:-bin}
RESTART_BACKOFF=${RESTART_BACKOFF:-1}

scripts/deps.sh
mkdir -p "$CLUSTER_BIN"
go build -o "$CLUSTER_BIN/server" ./demo/server
go build -o "$CLUSTER_BIN/rabbitbroker" ./internal/testkit/rabbittest/cmd/rabbitbroker
if [ -n "${CLUSTER_DIR:-}" ]; then
	dir=$CLUSTER_DIR
	mkdir -p "$dir"
else
	dir="$(mktemp -d /tmp/mqant-cluster.XXXXXX)"
fi

# The demo's cluster config with this run's ports.
sed -e "s/127\.0\.0\.1:5673/127.0.0.1:$BROKER_PORT/" \
	-e "s/:3563\"/:$GATE1_TCP\"/" -e "s/:3653\"/:$GATE1_WS\"/" \
	-e "s/:3564\"/:$GATE2_TCP\"/" -e "s/:3654\"/:$GATE2_WS\"/" \
	demo/conf/cluster.conf >"$dir/cluster.conf"

names=(login chat gate1 gate2)
declare -A pid started backoff # by name
broker=""
sleeper=""
stopping=""

# Each child gets a session of its own (setsid execs in place, so $! is the
# child): a terminal's Ctrl+C then reaches this script only, and the
# children are stopped one by one in the order cleanup picks.
start() {
	local name=$1 web="" admin=()
	if [ "$name" = gate1 ]; then
		web=$WEB_ADDR
		[ -z "$ADMIN_ADDR" ] || admin=(-admin "$ADMIN_ADDR")
	fi
	setsid "$CLUSTER_BIN/server" -conf "$dir/cluster.conf" -pid "$name" -web "$web" "${admin[@]}" &
	pid[$name]=$!
	started[$name]=$SECONDS
	echo "cluster: started $name (pid ${pid[$name]})"
}

# stop sends sig to a child and waits for it, 20 s at most before SIGKILL.
stop() {
	local p=$1 sig=$2
	kill "-$sig" "$p" 2>/dev/null || return 0
	for _ in $(seq 200); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$p" 2>/dev/null; then
		echo "cluster: $p still running 20s after SIG$sig; killing it" >&2
		kill -KILL "$p" 2>/dev/null || true
	fi
	wait "$p" 2>/dev/null || true
}

cleanup() {
	local rc=$1
	trap - EXIT INT TERM
	stopping=1
	[ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
	for ((i = ${#names[@]} - 1; i >= 0; i--)); do
		local p=${pid[${names[i]}]:-}
		[ -z "$p" ] || stop "$p" INT
	done
	[ -z "$broker" ] || stop "$broker" TERM
	[ -n "${CLUSTER_DIR:-}" ] || rm -rf "$dir"
	echo "cluster: stopped"
	exit "$rc"
}
trap 'cleanup 0' INT TERM
trap 'cleanup $?' EXIT

echo "cluster: starting RabbitMQ on 127.0.0.1:$BROKER_PORT (data in $dir)"
setsid "$CLUSTER_BIN/rabbitbroker" -dir "$dir/broker" -port "$BROKER_PORT" &
broker=$!
echo "cluster: started broker (pid $broker)"
for _ in $(seq 600); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then break; fi
	if ! kill -0 "$broker" 2>/dev/null; then echo "cluster: broker failed to start" >&2; exit 1; fi
	sleep 0.1
done
for name in "${names[@]}"; do
	backoff[$name]=$RESTART_BACKOFF
	start "$name"
done
echo "cluster: gate1 TCP :$GATE1_TCP WS :$GATE1_WS, gate2 TCP :$GATE2_TCP WS :$GATE2_WS${WEB_ADDR:+, web http://$WEB_ADDR/mqant/index.html}"

# Supervise: wait for any child to exit and start it again. Waits are
# interruptible builtins (wait, not a foreground sleep), so a signal runs
# cleanup at once, even during a backoff.
while [ -z "$stopping" ]; do
	set +e
	wait -n -p gone "${pid[@]}" ${broker:+"$broker"}
	status=$?
	set -e
	[ -n "${gone:-}" ] || continue
	if [ "$gone" = "$broker" ]; then
		echo "cluster: broker $gone exited (status $status); the servers keep retrying, stop with Ctrl+C" >&2
		broker=""
		continue
	fi
	for name in "${names[@]}"; do
		[ "${pid[$name]}" = "$gone" ] || continue
		if ((SECONDS - started[$name] >= 10)); then
			backoff[$name]=$RESTART_BACKOFF # it had been running: a new failure
		fi
		wait_s=${backoff[$name]}
		echo "cluster: $gone exited (status $status); restarting in ${wait_s}s" >&2
		sleep "$wait_s" &
		sleeper=$!
		wait "$sleeper" || true
		sleeper=""
		backoff[$name]=$((wait_s * 2 > 10 ? 10 : wait_s * 2))
		start "$name"
	done
	gone=""
done
