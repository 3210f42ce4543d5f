#!/usr/bin/env bash
# make bench: runs the Go benchmarks RUNS times, one run after another (so
# every ratio compares numbers measured together), and rewrites
# bench/results.md. bench/REPORT.md holds the hand-written analysis.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
PKGS="./internal/benchmod ./gate/packets ./runtime/rabbitmq"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
cmd="go test -run NONE -bench . -benchmem -count 1 -benchtime ${BENCHTIME:-1s} $PKGS"
for i in $(seq "$RUNS"); do
	echo "bench: run $i/$RUNS" >&2
	$cmd >>"$raw"
done
go run ./bench/benchreport -in "$raw" -out bench/results.md -cmd "$cmd (x$RUNS)"
