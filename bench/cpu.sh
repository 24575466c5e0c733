#!/usr/bin/env bash
# bench/cpu.sh — server CPU per answered query of jurisdns builds, side by
# side: UDP cache hits, blocked names and cache misses driven by
# bench/blast, the server pinned to SERVER_CPU, the builds run one after
# the other in every round.
#
#   bench/cpu.sh                          # the working tree's build, ROUNDS rounds
#   bench/cpu.sh /tmp/old /tmp/new        # two jurisdns binaries, alternately
#   ROUNDS=5 SECONDS_PER_RUN=5 bench/cpu.sh /tmp/old /tmp/new
#   WORKLOADS=miss bench/cpu.sh /tmp/old /tmp/new
#   DRIVER=dnsperf WORKLOADS=miss bench/cpu.sh /tmp/old /tmp/new
#
# On a shared machine q/s says more about the neighbours than about the
# server; CPU seconds per answer (the server's user+system time from
# /proc/PID/stat over the answers bench/blast counted) says less. Each
# round starts every build afresh with the same list (LIST_SIZE names,
# bench/gen, suffix match) and the default cache, warms the cache from knot
# (the upstream, as in bench/run.sh), then runs each of WORKLOADS (hit,
# blocked, miss: default all three) for SECONDS_PER_RUN. The miss queries
# are MISS_SIZE unique names of knot's zone, the same for every build (each
# starts with an empty cache): MISS_SIZE must exceed what a run sends, or
# the names come round again as hits. DRIVER=dnsperf sends the queries with
# dnsperf as bench/run.sh does (-c 10 -T 1 -q 200 -t 2 -e) instead of
# bench/blast: fewer queries per system call, the shape of its dnsperf
# tables. It prints one "cpu" line per build,
# round and workload, then the mean of each build and workload. Every
# process it starts is stopped on exit; every query goes to 127.0.0.1. It
# takes bench/run.sh's lock: one of them at a time.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
LIST_SIZE=${LIST_SIZE:-1000000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
KNOT_PORT=${KNOT_PORT:-5300}
JURISDNS_PORT=${JURISDNS_PORT:-5303}
JURISDNS_ADMIN_PORT=${JURISDNS_ADMIN_PORT:-5380}
BLAST_SOCKETS=${BLAST_SOCKETS:-4}
BLAST_OUTSTANDING=${BLAST_OUTSTANDING:-64}
SEED=${SEED:-20250801}
WORKLOADS=${WORKLOADS:-hit blocked miss}
MISS_SIZE=${MISS_SIZE:-1000000}
DRIVER=${DRIVER:-blast}
[[ $DRIVER == blast || $DRIVER == dnsperf ]] || { echo "cpu.sh: DRIVER must be blast or dnsperf, not '$DRIVER'" >&2; exit 2; }
if [[ $DRIVER == dnsperf ]] && ! command -v dnsperf >/dev/null; then
	echo "cpu.sh: dnsperf missing (Debian package dnsperf)" >&2
	exit 2
fi
for w in $WORKLOADS; do
	[[ $w == hit || $w == blocked || $w == miss ]] || { echo "cpu.sh: WORKLOADS: unknown workload '$w' (hit, blocked, miss)" >&2; exit 2; }
done
for v in ROUNDS SECONDS_PER_RUN LIST_SIZE BLAST_SOCKETS BLAST_OUTSTANDING MISS_SIZE; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "cpu.sh: $v must be a whole number ≥ 1, not '${!v}'" >&2; exit 2; }
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jurisdns-cpu.XXXXXX")
export PATH="$PATH:/usr/sbin:/sbin"
command -v knotd >/dev/null || { echo "cpu.sh: knotd missing (Debian package knot)" >&2; exit 2; }

LOCK=${LOCK:-/tmp/jurisdns-bench.lock}
exec {LOCK_FD}>"$LOCK"
flock -n "$LOCK_FD" || { echo "cpu.sh: another benchmark holds $LOCK" >&2; exit 2; }

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do [[ -n $p ]] && wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

BIN=$WORK/bin
mkdir -p "$BIN"
(cd "$ROOT" && go build -o "$BIN/gen" ./bench/gen && go build -o "$BIN/blast" ./bench/blast && go build -o "$BIN/probe" ./bench/probe)
builds=("$@")
if ((${#builds[@]} == 0)); then
	(cd "$ROOT" && go build -o "$BIN/jurisdns" ./cmd/jurisdns)
	builds=("$BIN/jurisdns")
fi
for b in "${builds[@]}"; do
	[[ -x $b ]] || { echo "cpu.sh: $b is not an executable" >&2; exit 2; }
done

DATA=$WORK/data
"$BIN/gen" -out "$DATA" -list "$LIST_SIZE" -miss "$MISS_SIZE" -miss-p99 10 -seed "$SEED" >/dev/null
# shellcheck disable=SC1091
source "$DATA/probe.txt" # ready_name, hit_name, zone

mkdir -p "$WORK/knot"
knot_conf "$WORK/knot" "$KNOT_PORT" "$zone" "$DATA/zone.db" >"$WORK/knot/knot.conf"
taskset -c "$CLIENT_CPU" knotd -c "$WORK/knot/knot.conf" >"$WORK/knot.log" 2>&1 &
knot_pid=$!
PIDS+=("$knot_pid")
"$BIN/probe" -server "127.0.0.1:$KNOT_PORT" -name "$hit_name" -rcode NOERROR -timeout 30s >/dev/null ||
	{ echo "cpu.sh: knot did not start: $(tail -n 3 "$WORK/knot.log")" >&2; exit 1; }
pin_threads "$knot_pid" "$CLIENT_CPU"

jurisdns_conf "$JURISDNS_PORT" "$JURISDNS_ADMIN_PORT" "$KNOT_PORT" "$DATA/list.txt" false >"$WORK/jurisdns.yaml"

TCK=$(getconf CLK_TCK)
ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
field() { awk -v k="$2" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' <<<"$1"; }
RESULTS=$WORK/results.txt
: >"$RESULTS"
for ((r = 1; r <= ROUNDS; r++)); do
	for b in "${builds[@]}"; do
		taskset -c "$SERVER_CPU" "$b" serve --config "$WORK/jurisdns.yaml" >"$WORK/jurisdns.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		"$BIN/probe" -server "127.0.0.1:$JURISDNS_PORT" -name "$ready_name" -rcode NXDOMAIN -timeout 60s >/dev/null ||
			{ echo "cpu.sh: $b did not get ready: $(tail -n 3 "$WORK/jurisdns.log")" >&2; exit 1; }
		# Warm: every hit name once from knot, at a pace knot keeps up with.
		taskset -c "$CLIENT_CPU" "$BIN/blast" -server "127.0.0.1:$JURISDNS_PORT" -queries "$DATA/q-hit.txt" \
			-duration 2s -sockets 1 -outstanding 8 >/dev/null
		for w in $WORKLOADS; do
			f=$DATA/q-$w.txt
			[[ $w == miss ]] && f=$DATA/q-miss-1.txt
			c0=$(ticks "$pid")
			if [[ $DRIVER == blast ]]; then
				line=$(taskset -c "$CLIENT_CPU" "$BIN/blast" -server "127.0.0.1:$JURISDNS_PORT" -queries "$f" \
					-duration "${SECONDS_PER_RUN}s" -sockets "$BLAST_SOCKETS" -outstanding "$BLAST_OUTSTANDING" 2>&1 | grep '^blast ' | tail -n 1)
			else
				line=$(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$JURISDNS_PORT" -d "$f" -l "$SECONDS_PER_RUN" \
					-c 10 -T 1 -q 200 -t 2 -e 2>&1 |
					awk '/Queries completed:/ { a = $3 } /Queries lost:/ { l = $3 } END { printf "dnsperf answered=%d lost=%d\n", a, l }')
			fi
			c1=$(ticks "$pid")
			awk -v b="$b" -v r="$r" -v w="$w" -v c=$((c1 - c0)) -v t="$TCK" -v a="$(field "$line" answered)" -v l="$(field "$line" lost)" \
				'BEGIN { if (a + 0 == 0) { printf "cpu build=%s round=%d workload=%s answered=0\n", b, r, w; exit }
					printf "cpu build=%s round=%d workload=%s cpu_s=%.2f answered=%d lost=%s us_per_answer=%.3f\n", b, r, w, c / t, a, l, c / t * 1e6 / a }' |
				tee -a "$RESULTS"
		done
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		PIDS=("${PIDS[@]/#$pid}") # stopped: a later PID with its number is not ours
	done
done
echo "mean µs of server CPU per answer over $ROUNDS rounds ($DRIVER):"
awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
	if (f["us_per_answer"] != "") { k = f["build"] " " f["workload"]; s[k] += f["us_per_answer"]; n[k]++ } delete f }
	END { for (k in s) printf "  %s %.3f\n", k, s[k] / n[k] }' "$RESULTS" | sort
