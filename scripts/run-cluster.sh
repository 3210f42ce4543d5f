#!/usr/bin/env bash
# make run-cluster: the chat demo as four processes (two gates, Login, Chat)
# sharing a private RabbitMQ broker on 127.0.0.1:5673. Ctrl+C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
mkdir -p bin
go build -o bin/server ./demo/server
go build -o bin/rabbitbroker ./internal/rabbittest/cmd/rabbitbroker
dir="$(mktemp -d /tmp/mqant-cluster.XXXXXX)"
pids=()
broker=""
cleanup() {
	trap - EXIT INT TERM
	for ((i=${#pids[@]}-1; i>=0; i--)); do kill -INT "${pids[i]}" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "$broker" ]; then kill -TERM "$broker" 2>/dev/null || true; wait "$broker" 2>/dev/null || true; fi
	rm -rf "$dir"
	echo "cluster: stopped"
}
trap cleanup EXIT INT TERM
echo "cluster: starting RabbitMQ on 127.0.0.1:5673 (data in $dir)"
bin/rabbitbroker -dir "$dir/broker" -port 5673 &
broker=$!
for i in $(seq 600); do
	if (exec 3<>/dev/tcp/127.0.0.1/5673) 2>/dev/null; then break; fi
	if ! kill -0 "$broker" 2>/dev/null; then echo "cluster: broker failed to start" >&2; exit 1; fi
	sleep 0.1
done
for p in login chat gate1 gate2; do
	web=""
	[ "$p" = gate1 ] && web="127.0.0.1:8080"
	bin/server -conf demo/conf/cluster.conf -pid "$p" -web "$web" &
	pids+=($!)
done
echo "cluster: gate1 TCP :3563 WS :3653, gate2 TCP :3564 WS :3654, web http://127.0.0.1:8080/mqant/index.html"
wait -n "${pids[@]}" || true
