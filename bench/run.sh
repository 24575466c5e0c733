#!/usr/bin/env bash
# bench/run.sh — the jurisdns benchmark: jurisdns against Unbound, dnsdist and
# a bare miekg/dns server, with dnsperf and the project's batched generator
# (bench/blast), on one machine, all on 127.0.0.1.
#
#   bench/run.sh                     # full run (~8 min): 1M-name list, 10 s per run; writes BENCHMARKS.md
#   BENCH_SECONDS=5 bench/run.sh     # shorter runs (every dnsperf run gets shorter)
#   QUICK=1 bench/run.sh             # smoke run: 5 s per run, 100k-name list
#   PEERS="unbound jurisdns" bench/run.sh
#   ENCRYPTED=0 bench/run.sh         # without the DoT and DoH runs
#   RPZ=0 bench/run.sh               # without the RPZ feed (axfr, ixfr) runs
#   FLOOD_AFTER=60 bench/run.sh      # the tcp-flood workload (jurisdns): RSS and goroutines that long after the flood
#   BLAST=0 bench/run.sh             # without the bench/blast runs (hit and blocked with the batched generator)
#   PROFILE_DIR=/tmp/p bench/run.sh  # jurisdns's heap profile after every workload into /tmp/p
#
# It installs dnsperf, unbound, dnsdist and knot from Debian when they are
# missing, builds jurisdns, the bare server (bench/limit), the data generator
# (bench/gen), the batched generator (bench/blast) and the probe
# (bench/probe), starts knot as the upstream on 127.0.0.1, then for each peer:
# starts it pinned to SERVER_CPU, measures time-to-ready and RSS with the
# list, warms the cache, runs dnsperf (pinned to CLIENT_CPU) for the hit,
# blocked and miss workloads and bench/blast (pinned to CLIENT_CPU) for hit
# and blocked, takes the server's CPU time and RSS after each, measures p99
# at a fixed rate and a reload under load; with ENCRYPTED=1 (the default) Unbound and
# jurisdns also serve DoT and DoH with a self-signed certificate, and the hit
# workload runs over each (dnsperf -m dot, -m doh), with a p99 over DoT; with
# RPZ=1 (the default) the list is also served as an RPZ zone by a second knot
# and pulled by a second jurisdns (AXFR at start, then a 10-name IXFR under
# load). It prints a Markdown table, writes it to
# bench/results/<date>.md and (on a full run) into BENCHMARKS.md between
# <!-- bench:begin --> and <!-- bench:end -->, and ends its output with one
# "bench server=... workload=..." line per peer and workload for other
# scripts. Every process it starts is stopped on exit, Ctrl-C included. No
# query leaves 127.0.0.1. See bench/README.md.
set -euo pipefail

# ---- settings (environment) -------------------------------------------------
ENV_GIVEN="" # the settings given in the environment, for the report
for v in QUICK RPZ BENCH_SECONDS DURATION LIST_SIZE MISS_SIZE P99_DURATION P99_QPS P99_ROUNDS RELOAD_QPS RELOAD_AT RELOAD_TAIL RELOAD_WAIT PEERS REPEAT DNSTAP \
	CLIENTS THREADS OUTSTANDING TIMEOUT EDNS SERVER_CPU CLIENT_CPU KNOT_CPU SEED WAIT_IDLE IDLE_PCT WRITE_BENCHMARKS ENCRYPTED \
	FLOOD_QUERIES FLOOD_HOLD FLOOD_AFTER BLAST BLAST_SECONDS BLAST_SOCKETS BLAST_OUTSTANDING PROFILE_DIR PROFILE_CPU; do
	if [[ ${!v:-} == *" "* ]]; then
		ENV_GIVEN+="$v=\"${!v}\" "
	elif [[ -n ${!v:-} ]]; then
		ENV_GIVEN+="$v=${!v} "
	fi
done
bad_setting() { echo "bench: $*" >&2; exit 2; }
QUICK=${QUICK:-0}
# BENCH_SECONDS: seconds per throughput run; DURATION is its old name, still read.
[[ -z ${BENCH_SECONDS:-} || -z ${DURATION:-} || $BENCH_SECONDS == "$DURATION" ]] ||
	echo "bench: BENCH_SECONDS=$BENCH_SECONDS and DURATION=$DURATION given; BENCH_SECONDS wins" >&2
BENCH_SECONDS=${BENCH_SECONDS:-${DURATION:-}}
if [[ $QUICK == 1 ]]; then
	BENCH_SECONDS=${BENCH_SECONDS:-5}
	LIST_SIZE=${LIST_SIZE:-100000}
	MISS_SIZE=${MISS_SIZE:-600000}
else
	BENCH_SECONDS=${BENCH_SECONDS:-10}
	LIST_SIZE=${LIST_SIZE:-1000000}
	MISS_SIZE=${MISS_SIZE:-2000000}
fi
[[ $BENCH_SECONDS =~ ^[1-9][0-9]*$ ]] || bad_setting "BENCH_SECONDS must be a whole number of seconds ≥ 1, not '$BENCH_SECONDS'"
TIMEOUT=${TIMEOUT:-2}                     # dnsperf -t: an answer later than this is lost
P99_DURATION=${P99_DURATION:-$((BENCH_SECONDS < 5 ? BENCH_SECONDS : 5))} # seconds per fixed-rate run (10,000 samples at the defaults)
P99_QPS=${P99_QPS:-2000}                  # rate of the p99 runs
# rounds of p99 runs (each round runs every peer and workload once, in turn);
# the p99 reported is the median of the rounds': one 5 s run's p99 moved by
# up to 2 ms between full runs of the same build (the vCPU's wake-ups).
P99_ROUNDS=${P99_ROUNDS:-$((QUICK == 1 ? 1 : 3))}
[[ $P99_ROUNDS =~ ^[1-9][0-9]*$ ]] || bad_setting "P99_ROUNDS must be a whole number ≥ 1, not '$P99_ROUNDS'"
RELOAD_QPS=${RELOAD_QPS:-20000}           # rate of the load during the reload
RELOAD_AT=${RELOAD_AT:-$((BENCH_SECONDS < 3 ? 2 : 3))} # seconds of load before the reload
# seconds of load after the new list is in force: longer than TIMEOUT, so that
# every query sent before that moment is answered or counted lost.
RELOAD_TAIL=${RELOAD_TAIL:-$(awk -v t="$TIMEOUT" 'BEGIN { print int(t) + 1 }')}
RELOAD_WAIT=${RELOAD_WAIT:-60}            # give up waiting for the new list after this many seconds
awk -v a="$RELOAD_TAIL" -v t="$TIMEOUT" 'BEGIN { exit !(a + 0 > t + 0) }' ||
	bad_setting "RELOAD_TAIL ($RELOAD_TAIL) must be longer than TIMEOUT ($TIMEOUT), or the queries lost to the reload are not all counted"
PEERS=${PEERS:-"limit unbound dnsdist jurisdns"}
ALL_PEERS="limit unbound dnsdist jurisdns" # a full run has every one of them
REPEAT=${REPEAT:-1}                       # throughput runs per peer and workload; the best counts
CLIENTS=${CLIENTS:-10}                    # dnsperf -c
THREADS=${THREADS:-1}                     # dnsperf -T
OUTSTANDING=${OUTSTANDING:-200}           # dnsperf -q
EDNS=${EDNS:-1}                           # 1: dnsperf sends EDNS0 (-e)
SERVER_CPU=${SERVER_CPU:-0}               # the server under test
CLIENT_CPU=${CLIENT_CPU:-1}               # dnsperf
KNOT_CPU=${KNOT_CPU:-1}                   # the upstream (shares with dnsperf: the server keeps its core)
KNOT_PORT=${KNOT_PORT:-5300}
LIMIT_PORT=${LIMIT_PORT:-5301}
UNBOUND_PORT=${UNBOUND_PORT:-5302}
DNSDIST_PORT=${DNSDIST_PORT:-5305}
JURISDNS_PORT=${JURISDNS_PORT:-5303}
JURISDNS_ADMIN_PORT=${JURISDNS_ADMIN_PORT:-5380}
DNSTAP=${DNSTAP:-1}                       # 1: also a hit run of jurisdns with dnstap on (to fstrm_capture)
DNSTAP_PORT=${DNSTAP_PORT:-5304}          # that second jurisdns
DNSTAP_ADMIN_PORT=${DNSTAP_ADMIN_PORT:-5381}
[[ $DNSTAP == 0 || $DNSTAP == 1 ]] || bad_setting "DNSTAP must be 0 or 1, not '$DNSTAP'"
ENCRYPTED=${ENCRYPTED:-1}                 # 1: DoT and DoH runs for unbound and jurisdns
UNBOUND_DOT_PORT=${UNBOUND_DOT_PORT:-5312}
UNBOUND_DOH_PORT=${UNBOUND_DOH_PORT:-5313}
JURISDNS_DOT_PORT=${JURISDNS_DOT_PORT:-5322}
JURISDNS_DOH_PORT=${JURISDNS_DOH_PORT:-5323}
[[ $ENCRYPTED == 0 || $ENCRYPTED == 1 ]] || bad_setting "ENCRYPTED must be 0 or 1, not '$ENCRYPTED'"
RPZ=${RPZ:-1}                             # 1: the RPZ feed workloads (axfr, ixfr) with jurisdns
KNOT_RPZ_PORT=${KNOT_RPZ_PORT:-5306}      # knot as the primary of the RPZ feed
JURISDNS_RPZ_PORT=${JURISDNS_RPZ_PORT:-5307}
JURISDNS_RPZ_ADMIN_PORT=${JURISDNS_RPZ_ADMIN_PORT:-5382}
SEED=${SEED:-20250801}
# bench/blast: the hit and blocked workloads again with the project's batched
# closed-loop generator (sendmmsg/recvmmsg), which on one core is not the
# limit where dnsperf is. BLAST_SOCKETS sockets with BLAST_OUTSTANDING
# queries in flight on each.
BLAST=${BLAST:-1}
BLAST_SECONDS=${BLAST_SECONDS:-5} # a run sends millions of queries: 5 s is plenty
BLAST_SOCKETS=${BLAST_SOCKETS:-4}
BLAST_OUTSTANDING=${BLAST_OUTSTANDING:-64}
[[ $BLAST == 0 || $BLAST == 1 ]] || bad_setting "BLAST must be 0 or 1, not '$BLAST'"
[[ $BLAST_SECONDS =~ ^[1-9][0-9]*$ && $BLAST_SOCKETS =~ ^[1-9][0-9]*$ && $BLAST_OUTSTANDING =~ ^[1-9][0-9]*$ ]] ||
	bad_setting "BLAST_SECONDS, BLAST_SOCKETS and BLAST_OUTSTANDING must be whole numbers ≥ 1"
# PROFILE_DIR: when set, jurisdns serves /debug/pprof (admin_pprof) and its
# heap profile is saved there after every workload (heap-<workload>.pb.gz;
# read with go tool pprof -sample_index=inuse_space).
PROFILE_DIR=${PROFILE_DIR:-}
PROFILE_CPU=${PROFILE_CPU:-0} # 1 (with PROFILE_DIR): also a CPU profile of jurisdns's miss run, cpu-<run>.pb.gz
[[ $PROFILE_CPU == 0 || $PROFILE_CPU == 1 ]] || bad_setting "PROFILE_CPU must be 0 or 1, not '$PROFILE_CPU'"
# tcp-flood (jurisdns only): one TCP connection pipelines FLOOD_QUERIES
# queries and never reads; RSS and goroutines are taken FLOOD_HOLD/2 s into
# the flood and FLOOD_AFTER s after the connection closed.
FLOOD_QUERIES=${FLOOD_QUERIES:-300000}
FLOOD_HOLD=${FLOOD_HOLD:-10}
FLOOD_AFTER=${FLOOD_AFTER:-60}
[[ $FLOOD_HOLD =~ ^[1-9][0-9]*$ && $FLOOD_AFTER =~ ^[0-9]+$ && $FLOOD_QUERIES =~ ^[1-9][0-9]*$ ]] ||
	bad_setting "FLOOD_QUERIES, FLOOD_HOLD (≥ 1) and FLOOD_AFTER must be whole numbers"
WAIT_IDLE=${WAIT_IDLE:-0}                 # seconds to wait, before each run, for other work to stop
IDLE_PCT=${IDLE_PCT:-10}                  # busier than this (% of all cores) counts as busy
INSTALL=${INSTALL:-1}                     # 0: never apt-get install
KEEP=${KEEP:-0}                           # 1: keep the work directory
# WRITE_BENCHMARKS: empty: write the table into BENCHMARKS.md on a full run
# only (not QUICK, all three peers, the 1M list); 1: always; 0: never.
WRITE_BENCHMARKS=${WRITE_BENCHMARKS:-}
[[ $WRITE_BENCHMARKS == "" || $WRITE_BENCHMARKS == 0 || $WRITE_BENCHMARKS == 1 ]] ||
	bad_setting "WRITE_BENCHMARKS must be 0, 1 or empty, not '$WRITE_BENCHMARKS'"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
BENCHMARKS_FILE=${BENCHMARKS_FILE:-$ROOT/BENCHMARKS.md} # where WRITE_BENCHMARKS writes
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/jurisdns-bench.XXXXXX")}
export PATH="$PATH:/usr/sbin:/sbin"

# One run at a time: two runs would share the cores and the ports (Unbound and
# knot bind with SO_REUSEPORT, so a second one would silently take half of the
# other's queries).
LOCK=${LOCK:-/tmp/jurisdns-bench.lock}
exec {LOCK_FD}>"$LOCK"
if ! flock -n "$LOCK_FD"; then
	echo "bench: another bench/run.sh is running (it holds $LOCK); wait for it to finish" >&2
	rmdir "$WORK" 2>/dev/null || true
	exit 1
fi

BIN=$WORK/bin
DATA=$WORK/data
OUT=$WORK/out
mkdir -p "$BIN" "$DATA" "$OUT"

# ---- process bookkeeping ----------------------------------------------------
PIDS=()

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# stop PID: TERM, then KILL after 10 s. Only processes this script started.
stop() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		stop "$pid"
	done
	if [[ $KEEP == 1 ]]; then
		log "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'exit 143' TERM

# start LOGFILE CMD...: run CMD in the background, remember its pid in $LAST.
start() {
	local logfile=$1
	shift
	"$@" >"$logfile" 2>&1 &
	LAST=$!
	PIDS+=("$LAST")
}

# forget PID (it was stopped).
forget() {
	local pid=$1 keep=() p
	for p in "${PIDS[@]}"; do
		[[ $p == "$pid" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# check_ports: every port this run serves must be free on 127.0.0.1 (UDP;
# TCP listeners for the admin port), or the numbers would be someone else's.
check_ports() {
	local -a ports=("$KNOT_PORT") busy=()
	[[ " $PEERS " != *" limit "* ]] || ports+=("$LIMIT_PORT")
	[[ " $PEERS " != *" unbound "* ]] || ports+=("$UNBOUND_PORT")
	[[ " $PEERS " != *" dnsdist "* ]] || ports+=("$DNSDIST_PORT")
	[[ " $PEERS " != *" jurisdns "* ]] || ports+=("$JURISDNS_PORT" "$JURISDNS_ADMIN_PORT")
	[[ " $PEERS " != *" jurisdns "* || $RPZ != 1 ]] || ports+=("$KNOT_RPZ_PORT" "$JURISDNS_RPZ_PORT" "$JURISDNS_RPZ_ADMIN_PORT")
	[[ " $PEERS " != *" jurisdns "* || $DNSTAP != 1 ]] || ports+=("$DNSTAP_PORT" "$DNSTAP_ADMIN_PORT")
	if [[ $ENCRYPTED == 1 ]]; then
		[[ " $PEERS " != *" unbound "* ]] || ports+=("$UNBOUND_DOT_PORT" "$UNBOUND_DOH_PORT")
		[[ " $PEERS " != *" jurisdns "* ]] || ports+=("$JURISDNS_DOT_PORT" "$JURISDNS_DOH_PORT")
	fi
	local port hex
	for port in "${ports[@]}"; do
		hex=$(printf '%04X' "$port")
		# /proc/net/{udp,tcp}: local address is field 2 (ADDR:PORT in hex), state field 4 (0A = LISTEN).
		if awk -v p="$hex" 'FNR > 1 { split($2, a, ":"); if (a[2] == p && (FILENAME ~ /udp/ || $4 == "0A")) f = 1 } END { exit !f }' \
			/proc/net/udp /proc/net/udp6 /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
			busy+=("$port")
		fi
	done
	((${#busy[@]} == 0)) || die "port(s) ${busy[*]} already in use on this machine (set KNOT_PORT, LIMIT_PORT, UNBOUND_PORT, DNSDIST_PORT, JURISDNS_PORT, JURISDNS_ADMIN_PORT)"
}

# ---- tools ------------------------------------------------------------------
install_missing() {
	local -a pkgs=()
	command -v dnsperf >/dev/null || pkgs+=(dnsperf)
	command -v knotd >/dev/null || pkgs+=(knot)
	command -v taskset >/dev/null || pkgs+=(util-linux)
	[[ $ENCRYPTED == 0 ]] || command -v openssl >/dev/null || pkgs+=(openssl)
	if [[ " $PEERS " == *" unbound "* ]] && ! command -v unbound >/dev/null; then
		pkgs+=(unbound)
	fi
	if [[ " $PEERS " == *" dnsdist "* ]] && ! command -v dnsdist >/dev/null; then
		pkgs+=(dnsdist)
	fi
	if [[ " $PEERS " == *" jurisdns "* && $DNSTAP == 1 ]] && ! command -v fstrm_capture >/dev/null; then
		pkgs+=(fstrm-bin)
	fi
	((${#pkgs[@]})) || return 0
	[[ $INSTALL == 1 ]] || die "missing packages: ${pkgs[*]} (INSTALL=0)"
	command -v apt-get >/dev/null || die "missing packages: ${pkgs[*]}, and no apt-get"
	local sudo=()
	[[ $EUID -eq 0 ]] || sudo=(sudo)
	log "installing ${pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get install -y --no-install-recommends "${pkgs[@]}" >"$OUT/apt.log" 2>&1 ||
		{ "${sudo[@]}" apt-get update >>"$OUT/apt.log" 2>&1 &&
			"${sudo[@]}" apt-get install -y --no-install-recommends "${pkgs[@]}" >>"$OUT/apt.log" 2>&1; } ||
		die "apt-get install ${pkgs[*]} failed; see $OUT/apt.log (KEEP=1)"
}

build() {
	log "building bench tools"
	(cd "$ROOT" && go build -o "$BIN/gen" ./bench/gen && go build -o "$BIN/limit" ./bench/limit &&
		go build -o "$BIN/probe" ./bench/probe && go build -o "$BIN/flood" ./bench/flood &&
		go build -o "$BIN/blast" ./bench/blast) || die "go build of bench/ failed"
	HAVE_JURISDNS=0
	# The commit the binary is built from, taken now: the working tree may
	# change while the run goes on.
	BUILT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet HEAD 2>/dev/null || echo '+dirty')
	if [[ " $PEERS " == *" jurisdns "* ]]; then
		if (cd "$ROOT" && go build -o "$BIN/jurisdns" ./cmd/jurisdns) >"$OUT/jurisdns-build.log" 2>&1; then
			HAVE_JURISDNS=1
		else
			log "jurisdns: SKIPPED — go build ./cmd/jurisdns failed: $(head -n 1 "$OUT/jurisdns-build.log")"
		fi
	fi
}

# ---- measurement helpers -------------------------------------------------------
now_ns() { date +%s%N; }

# cpu_ticks PID: user+system CPU time of the process, in clock ticks.
cpu_ticks() { { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; } 2>/dev/null || echo 0; }
CLK_TCK=$(getconf CLK_TCK)

rss_mib() { # rss_mib PID FIELD (VmRSS | VmHWM)
	awk -v f="$2:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

# sched_s PID: the seconds process PID's threads have run on a CPU and
# waited in a run queue for one, so far, and of the run its user and system
# time and minor page faults ("run 0.25 s (user 0.21, system 0.04, 17190
# faults), waited 0.01 s": a ready time well over the run time was spent
# waiting for the core, behind something else on it), from
# /proc/PID/task/*/schedstat and /proc/PID/stat.
sched_s() {
	local ut st flt tick
	tick=$(getconf CLK_TCK)
	read -r flt ut st < <(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $8, $12, $13 }') || true
	cat /proc/"$1"/task/*/schedstat 2>/dev/null |
		awk -v u="${ut:-}" -v s="${st:-}" -v f="${flt:-}" -v hz="$tick" '{ r += $1; w += $2 }
			END { if (!NR) { print "run ? s"; exit }
				printf "run %.3f s", r / 1e9
				if (u != "") printf " (user %.2f, system %.2f, %d faults)", u / hz, s / hz, f
				printf ", waited %.3f s", w / 1e9 }'
}

# dnsperf_run NAME PORT FILE SECONDS [extra dnsperf args...]: output in $OUT/NAME.txt
dnsperf_run() {
	local name=$1 port=$2 file=$3 secs=$4 pid rc=0
	shift 4
	local -a args=(-s 127.0.0.1 -p "$port" -d "$file" -l "$secs" -c "$CLIENTS" -T "$THREADS" -t "$TIMEOUT")
	[[ $EDNS == 1 ]] && args+=(-e)
	taskset -c "$CLIENT_CPU" dnsperf "${args[@]}" "$@" >"$OUT/$name.txt" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait "$pid" || rc=$?
	forget "$pid"
	((rc == 0)) || die "dnsperf $name failed; see $OUT/$name.txt (KEEP=1)"
}

qps_of() { awk '/Queries per second:/ { printf "%.0f", $4 }' "$OUT/$1.txt"; }
lost_of() { awk '/Queries lost:/ { print $3 " " $4 }' "$OUT/$1.txt"; }
lost_n_of() { awk '/Queries lost:/ { print $3 }' "$OUT/$1.txt"; }
sent_of() { awk '/Queries sent:/ { print $3 }' "$OUT/$1.txt"; }
rcodes_of() { sed -n 's/^ *Response codes: *//p' "$OUT/$1.txt"; }

# p99_of NAME: 99th percentile latency in ms of the answered queries (dnsperf -v
# prints "> RCODE name type seconds" per answer and "> T name type" per
# query that timed out; those are lost, not fast).
p99_of() {
	awk '$1 == ">" && $2 != "T" && $NF ~ /^[0-9]+(\.[0-9]+)?$/ { print $NF }' "$OUT/$1.txt" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "?"; exit } i = int(NR * 0.99 + 0.999999); if (i > NR) i = NR; printf "%.2f", v[i] * 1000 }'
}

# note NAME [REMARK]: one detail line for the results.
note() {
	local n=$1 remark=${2:-}
	if grep -q 'end of file' "$OUT/$n.txt"; then
		remark+="; ran out of names before the time limit"
	fi
	DETAILS+=("| $n | ${BUSY[$n]:-?} | $(sent_of "$n") | $(lost_of "$n") | $(qps_of "$n") | $(rcodes_of "$n") | ${remark#; } |")
}

# busy_pct: share of the machine's CPU time (all cores) busy during one
# second, before a peer starts: other work on the machine skews every number.
busy_pct() {
	local a b
	a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
	sleep 1
	b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; v = 0; if (d != 0) v = 100 * (y[1] - x[1]) / d; printf "%.0f", v }'
}

# settle NAME: before a run, one second of quiet, measured. With WAIT_IDLE > 0
# it waits up to that many seconds for the machine to be under IDLE_PCT busy.
# BUSY[NAME] keeps the last sample; the report shows it next to the run.
declare -A BUSY
settle() {
	local name=$1 waited=0 b
	b=$(busy_pct)
	while ((b >= IDLE_PCT && waited < WAIT_IDLE)); do
		((waited == 0)) && log "machine ${b}% busy, waiting up to ${WAIT_IDLE}s for it to calm down"
		b=$(busy_pct)
		waited=$((waited + 1))
	done
	((b < IDLE_PCT)) || log "warning: machine ${b}% busy before $name: its numbers will be low and noisy"
	BUSY[$name]=$b
}

per_cpu() { awk -v q="$1" -v c="$2" 'BEGIN { if (q == "" || c + 0 <= 0) print "?"; else printf "%.1fk", q / c * 100 / 1000 }'; }

fmt_qps() { awk -v q="$1" 'BEGIN { if (q == "") print "?"; else printf "%.1fk", q / 1000 }'; }

# ---- encrypted transports ------------------------------------------------------
# check_encrypted: the installed dnsperf must know -m dot and -m doh (2.5 and
# later); otherwise the encrypted runs are left out, with a message.
check_encrypted() {
	[[ $ENCRYPTED == 1 ]] || return 0
	# Not "dnsperf -h | grep -q": with pipefail, grep leaving early can
	# kill dnsperf with SIGPIPE and fail the pipeline (it did, at random).
	local help
	help=$(dnsperf -h 2>&1 || true)
	if [[ $help != *"dot or doh"* ]]; then
		log "warning: this dnsperf has no -m dot / -m doh: the DoT and DoH runs are left out"
		ENCRYPTED=0
	fi
}

# make_cert: a self-signed certificate for 127.0.0.1, shared by Unbound and
# jurisdns (dnsperf does not verify it).
make_cert() {
	[[ $ENCRYPTED == 1 ]] || return 0
	mkdir -p "$WORK/tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" -subj "/CN=bench.jurisdns.invalid" \
		-addext "subjectAltName=DNS:bench.jurisdns.invalid,IP:127.0.0.1" >"$OUT/openssl.log" 2>&1 ||
		die "openssl could not make the test certificate; see $OUT/openssl.log (KEEP=1)"
}

# transport PEER WORKLOAD: sets TPORT and TARGS, the port and the dnsperf
# arguments of the workload's transport (dot-hit: the hit workload over DoT).
transport() {
	local p=$1 w=$2
	TPORT=${PORT[$p]}
	TARGS=()
	case $w in
	dot-*)
		TPORT=${DOT_PORT[$p]}
		TARGS=(-m dot)
		;;
	doh-*)
		TPORT=${DOH_PORT[$p]}
		TARGS=(-m doh -O "doh-uri=https://127.0.0.1:$TPORT/dns-query" -O doh-method=POST)
		;;
	esac
}

# ---- data and upstream --------------------------------------------------------
generate() {
	log "generating data: list $LIST_SIZE names, $MISS_SIZE miss names (seed $SEED)"
	# The dnsperf miss runs use q-miss-1..REPEAT, the bench/blast ones the
	# next REPEAT files: every name is new to every peer.
	"$BIN/gen" -out "$DATA" -list "$LIST_SIZE" -miss "$MISS_SIZE" -miss-files $((BLAST ? 2 * REPEAT : REPEAT)) -seed "$SEED"
	ready_name="" added_name="" hit_name="" zone=""
	# shellcheck disable=SC1091
	source "$DATA/probe.txt" # sets ready_name, added_name, hit_name, zone
}

start_knot() {
	local d=$WORK/knot
	mkdir -p "$d"
	knot_conf "$d" "$KNOT_PORT" "$zone" "$DATA/zone.db" >"$d/knot.conf"
	start "$OUT/knot.log" taskset -c "$KNOT_CPU" knotd -c "$d/knot.conf"
	KNOT_PID=$LAST
	"$BIN/probe" -server "127.0.0.1:$KNOT_PORT" -name "$hit_name" -rcode NOERROR -timeout 30s >/dev/null ||
		die "knot did not start; see $OUT/knot.log (KEEP=1)"
	pin_threads "$KNOT_PID" "$KNOT_CPU"
	log "knot serving $zone on 127.0.0.1:$KNOT_PORT (pid $KNOT_PID, cpu $KNOT_CPU)"
}

# ---- peers --------------------------------------------------------------------
# Each start_<peer> starts the server pinned to SERVER_CPU and sets PEER_PID,
# PEER_PORT, START_NS. Each reload_<peer> adds $added_name to its list and
# tells it to reload.

start_limit() {
	PEER_PORT=$LIMIT_PORT
	START_NS=$(now_ns)
	start "$OUT/limit.log" taskset -c "$SERVER_CPU" "$BIN/limit" -listen "127.0.0.1:$PEER_PORT"
	PEER_PID=$LAST
}

start_unbound() {
	local d=$WORK/unbound enc=""
	mkdir -p "$d"
	if [[ $ENCRYPTED == 1 ]]; then
		# Unbound's own DoT and DoH (1.17 with nghttp2): the peer of jurisdns's.
		enc="    interface: 127.0.0.1@$UNBOUND_DOT_PORT
    interface: 127.0.0.1@$UNBOUND_DOH_PORT
    tls-port: $UNBOUND_DOT_PORT
    https-port: $UNBOUND_DOH_PORT
    http-endpoint: /dns-query
    tls-service-key: $WORK/tls/key.pem
    tls-service-pem: $WORK/tls/cert.pem
    incoming-num-tcp: 1000"
		DOT_PORT[unbound]=$UNBOUND_DOT_PORT
		DOH_PORT[unbound]=$UNBOUND_DOH_PORT
	fi
	cp "$DATA/unbound-list.conf" "$d/list.conf"
	cat >"$d/unbound.conf" <<EOF
server:
    interface: 127.0.0.1
    port: $UNBOUND_PORT
    do-ip6: no
    so-reuseport: no
    num-threads: 1
    username: ""
    chroot: ""
    directory: "$d"
    pidfile: "$d/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 0
    module-config: "iterator"
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    num-queries-per-thread: 4096
    so-rcvbuf: 8m
    so-sndbuf: 8m
    outgoing-range: 8192
    msg-cache-size: 128m
    rrset-cache-size: 256m
$enc
    include: "$d/list.conf"
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$KNOT_PORT
EOF
	unbound-checkconf "$d/unbound.conf" >"$OUT/unbound-checkconf.log" 2>&1 ||
		die "unbound-checkconf failed; see $OUT/unbound-checkconf.log (KEEP=1)"
	PEER_PORT=$UNBOUND_PORT
	START_NS=$(now_ns)
	start "$OUT/unbound.log" taskset -c "$SERVER_CPU" unbound -d -c "$d/unbound.conf"
	PEER_PID=$LAST
}

reload_unbound() {
	printf 'local-zone: "%s." always_nxdomain\n' "$added_name" >>"$WORK/unbound/list.conf"
	RELOAD_NS=$(now_ns)
	kill -HUP "$PEER_PID"
}

# start_dnsdist: dnsdist (Debian's) as a caching proxy to knot: security
# polling off (it would query the Internet), a packet cache of as many
# entries as jurisdns's default cache, the list as a SuffixMatchNode that
# answers NXDOMAIN, 8 MiB socket buffers like jurisdns's and Unbound's here
# (the kernel caps them at net.core.rmem_max). It has no reload of the list on a signal: no reload run.
start_dnsdist() {
	local d=$WORK/dnsdist
	mkdir -p "$d"
	cat >"$d/dnsdist.conf" <<EOF
setSecurityPollSuffix("")
setUDPSocketBufferSizes(8388608, 8388608)
setLocal("127.0.0.1:$DNSDIST_PORT")
setACL({"127.0.0.0/8"})
newServer({address="127.0.0.1:$KNOT_PORT", name="knot", checkName="$zone"})
getPool(""):setCache(newPacketCache(100000, {maxTTL=86400, minTTL=0}))
list = newSuffixMatchNode()
for line in io.lines("$DATA/list.txt") do
  if line ~= "" and line:sub(1, 1) ~= "#" then list:add(line) end
end
addAction(SuffixMatchNodeRule(list, true), RCodeAction(DNSRCode.NXDOMAIN))
EOF
	dnsdist --check-config -C "$d/dnsdist.conf" >"$OUT/dnsdist-check.log" 2>&1 ||
		die "dnsdist --check-config failed; see $OUT/dnsdist-check.log (KEEP=1)"
	PEER_PORT=$DNSDIST_PORT
	START_NS=$(now_ns)
	start "$OUT/dnsdist.log" taskset -c "$SERVER_CPU" dnsdist --supervised --disable-syslog -C "$d/dnsdist.conf"
	PEER_PID=$LAST
}

start_jurisdns() {
	local d=$WORK/jurisdns
	mkdir -p "$d"
	cp "$DATA/list.txt" "$d/list.txt"
	jurisdns_conf "$JURISDNS_PORT" "$JURISDNS_ADMIN_PORT" "$KNOT_PORT" "$d/list.txt" \
		"$([[ -n $PROFILE_DIR ]] && echo true || echo false)" >"$d/jurisdns.yaml"
	if [[ $ENCRYPTED == 1 ]]; then
		cat >>"$d/jurisdns.yaml" <<EOF
tls: {cert_file: "$WORK/tls/cert.pem", key_file: "$WORK/tls/key.pem"}
dot: {listen: ["127.0.0.1:$JURISDNS_DOT_PORT"]}
doh: {listen: ["127.0.0.1:$JURISDNS_DOH_PORT"]}
EOF
		DOT_PORT[jurisdns]=$JURISDNS_DOT_PORT
		DOH_PORT[jurisdns]=$JURISDNS_DOH_PORT
	fi
	PEER_PORT=$JURISDNS_PORT
	START_NS=$(now_ns)
	start "$OUT/jurisdns.log" taskset -c "$SERVER_CPU" "$BIN/jurisdns" serve --config "$d/jurisdns.yaml"
	PEER_PID=$LAST
}

# start_dnstap: a second jurisdns, configured as the first plus dnstap
# (client and forwarder messages) to fstrm_capture, which writes to
# /dev/null (a file would grow by hundreds of MB per run). fstrm_capture
# shares CLIENT_CPU with dnsperf: the server keeps its core to itself, as in
# a deployment where the collector runs elsewhere.
start_dnstap() {
	local d=$WORK/dnstap i
	mkdir -p "$d"
	start "$OUT/fstrm_capture.log" taskset -c "$CLIENT_CPU" fstrm_capture -t protobuf:dnstap.Dnstap -u "$d/dnstap.sock" -w /dev/null
	FSTRM_PID=$LAST
	for ((i = 0; i < 100; i++)); do
		[[ -S $d/dnstap.sock ]] && break
		sleep 0.1
	done
	[[ -S $d/dnstap.sock ]] || die "fstrm_capture did not listen; see $OUT/fstrm_capture.log (KEEP=1)"
	# Plain DNS only: the DoT and DoH listeners stay the first one's.
	sed -e "s/127.0.0.1:$JURISDNS_PORT/127.0.0.1:$DNSTAP_PORT/" -e "s/127.0.0.1:$JURISDNS_ADMIN_PORT/127.0.0.1:$DNSTAP_ADMIN_PORT/" \
		-e '/^tls:/d' -e '/^dot:/d' -e '/^doh:/d' "$WORK/jurisdns/jurisdns.yaml" >"$d/jurisdns.yaml"
	printf 'dnstap: {socket: "%s", identity: bench, messages: [client, forwarder]}\n' "$d/dnstap.sock" >>"$d/jurisdns.yaml"
	PEER_PORT=$DNSTAP_PORT
	START_NS=$(now_ns)
	start "$OUT/dnstap.log" taskset -c "$SERVER_CPU" "$BIN/jurisdns" serve --config "$d/jurisdns.yaml"
	PEER_PID=$LAST
}

# dnstap_metric NAME: a jurisdns_ metric of the dnstap instance, from its
# admin /metrics (bash's /dev/tcp: no curl needed).
dnstap_metric() {
	local name=$1
	{
		exec 3<>"/dev/tcp/127.0.0.1/$DNSTAP_ADMIN_PORT" &&
			printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
			awk -v m="jurisdns_$name" '$1 == m { printf "%.0f", $2; f = 1 } END { if (!f) print "?" }' <&3
		exec 3<&-
	} 2>/dev/null || echo "?"
}

reload_jurisdns() {
	printf '%s\n' "$added_name" >>"$WORK/jurisdns/list.txt"
	RELOAD_NS=$(now_ns)
	kill -HUP "$PEER_PID"
}

# ---- the peers, interleaved --------------------------------------------------------
# The peers run side by side (each idle while another is measured) and the
# runs are interleaved: hit for every peer, then blocked for every peer, ...
# so that a change in what else the machine does hits them all alike. With
# REPEAT > 1 every throughput run is repeated and the best kept.
declare -A R   # results: R[peer.key]
declare -A PID # server pid per peer
declare -A PORT
declare -A DOT_PORT DOH_PORT # encrypted ports per peer (unbound, jurisdns)
ACTIVE=() # peers that started

# up PEER: start it, time-to-ready and RSS, warm the cache.
up() {
	local p=$1 ready_rcode=NXDOMAIN rname=$ready_name
	if [[ ($p == jurisdns || $p == dnstap) && $HAVE_JURISDNS != 1 ]]; then
		R[$p.skip]="skipped: go build ./cmd/jurisdns failed"
		return
	fi
	[[ $p == limit ]] && { ready_rcode=NOERROR; rname=$hit_name; }
	settle "$p-start"
	log "$p: starting (cpu $SERVER_CPU)"
	"start_$p"
	PID[$p]=$PEER_PID
	PORT[$p]=$PEER_PORT
	R[$p.ready]=$("$BIN/probe" -server "127.0.0.1:${PORT[$p]}" -name "$rname" -rcode "$ready_rcode" -since "$START_NS" -timeout 10m) ||
		die "$p never became ready; see $OUT/$p.log (KEEP=1)"
	R[$p.rss_ready]=$(rss_mib "${PID[$p]}" VmRSS)
	R[$p.ready_sched]=$(sched_s "${PID[$p]}")
	log "$p: ready in ${R[$p.ready]} s (${R[$p.ready_sched]}), RSS ${R[$p.rss_ready]} MiB"
	# Warm: every hit name once, so the hit runs measure the cache.
	dnsperf_run "$p-warm" "${PORT[$p]}" "$DATA/q-hit.txt" 30 -n 1 -q 50
	ACTIVE+=("$p")
}

# throughput PEER WORKLOAD REP (WORKLOAD hit, blocked, miss, or dot-hit and
# doh-hit: hit over DoT and DoH)
throughput() {
	local p=$1 w=$2 rep=$3 f=$DATA/q-${2#do[th]-}.txt run=$1-$2
	local -a once=()
	transport "$p" "$w"
	# Miss names are each sent once (-n 1), fresh ones per repetition;
	# hit and blocked names repeat.
	[[ $w == miss ]] && { once=(-n 1); f=$DATA/q-miss-$rep.txt; }
	((REPEAT == 1)) || run+="-$rep"
	settle "$run"
	local t0 c0 t1 c1 q cpu rss
	local prof=""
	if [[ $PROFILE_CPU == 1 && -n $PROFILE_DIR && $p == jurisdns && $w == miss ]]; then
		# A CPU profile of the miss run (it costs the run a few per cent).
		mkdir -p "$PROFILE_DIR"
		curl -sf --max-time $((BENCH_SECONDS + 20)) -o "$PROFILE_DIR/cpu-$run.pb.gz" \
			"http://127.0.0.1:$JURISDNS_ADMIN_PORT/debug/pprof/profile?seconds=$((BENCH_SECONDS > 2 ? BENCH_SECONDS - 1 : 1))" &
		prof=$!
		PIDS+=("$prof")
	fi
	t0=$(now_ns) c0=$(cpu_ticks "${PID[$p]}")
	dnsperf_run "$run" "$TPORT" "$f" "$BENCH_SECONDS" -q "$OUTSTANDING" "${once[@]}" "${TARGS[@]}"
	t1=$(now_ns) c1=$(cpu_ticks "${PID[$p]}")
	if [[ -n $prof ]]; then
		wait "$prof" && log "$p: CPU profile of the $w run in $PROFILE_DIR/cpu-$run.pb.gz" || log "warning: no CPU profile of $run"
		forget "$prof"
	fi
	rss=$(rss_mib "${PID[$p]}" VmRSS)
	heap_profile "$p" "$run"
	q=$(qps_of "$run")
	# The server's CPU time over the run: on a busy machine it gets less
	# than its core, and q/s per CPU-second is the steadier number.
	cpu=$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", 100 * c / hz / (ns / 1e9) }')
	us=$(cpu_us $((c1 - c0)) $(($(sent_of "$run") - $(lost_n_of "$run"))))
	note "$run" "server CPU ${cpu}%, $(awk -v q="$q" -v c="$cpu" 'BEGIN { if (c > 0) printf "%.1fk", q / c * 100 / 1000; else print "?" }') q per CPU-second, ${us} µs CPU per answer, RSS after ${rss} MiB"
	log "$p: $w $(fmt_qps "$q") q/s, lost $(lost_of "$run"), server CPU ${cpu}% (${us} µs per answer), RSS ${rss} MiB"
	keep_best "$p" "$w" "$q" "$cpu" "$(lost_n_of "$run")" "$rss" "$us"
}

# keep_best PEER WORKLOAD QPS CPU% LOST RSS CPU_US: the run's figures, when
# it is the first or the fastest of its REPEAT runs.
keep_best() {
	local p=$1 w=$2
	if [[ -z ${R[$p.$w]:-} ]] || (($3 > R[$p.$w])); then
		R[$p.$w]=$3
		R[$p.${w}_cpu]=$4
		R[$p.${w}_lost]=$5
		R[$p.${w}_rss]=$6
		R[$p.${w}_us]=$7
	fi
}

# cpu_us TICKS ANSWERED: the server's CPU time per answered query, in µs.
cpu_us() { awk -v c="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", c / hz / n * 1e6; else print "?" }'; }

# heap_profile PEER RUN: with PROFILE_DIR, jurisdns's heap profile after
# RUN (a GC runs first: the profile shows what is live) into
# PROFILE_DIR/heap-RUN.pb.gz; the Go runtime's view of its memory (from
# /metrics) and the profile's largest live allocation sites go into the log
# and the report.
heap_profile() {
	local p=$1 run=$2 port f top mem
	[[ -n $PROFILE_DIR && $p == jurisdns ]] || return 0
	port=$JURISDNS_ADMIN_PORT
	mkdir -p "$PROFILE_DIR"
	f=$PROFILE_DIR/heap-$run.pb.gz
	curl -sf --max-time 20 -o "$f" "http://127.0.0.1:$port/debug/pprof/heap?gc=1" ||
		{ log "warning: no heap profile of $p after $run (admin_pprof?)"; return 0; }
	mem=$(curl -s --max-time 5 "http://127.0.0.1:$port/metrics" | awk '
		$1 == "go_memstats_heap_inuse_bytes" { u = $2 } $1 == "go_memstats_stack_inuse_bytes" { s = $2 }
		$1 == "jurisdns_cache_bytes" { c = $2 } $1 == "jurisdns_cache_entries" { e = $2 } $1 == "go_gc_gomemlimit_bytes" { l = $2 }
		END { printf "%.0f | %.1f | %.0f (%d) | %.0f", u / 1048576, s / 1048576, c / 1048576, e, l / 1048576 }')
	# The four largest live allocation sites (flat), package paths shortened.
	top=$(go tool pprof -sample_index=inuse_space -top -nodecount=4 "$f" 2>/dev/null | awk '
		/flat%/ { on = 1; next } on && NF >= 6 { n = $6; for (i = 7; i <= NF; i++) n = n " " $i; printf "%s%s %s", (k++ ? ", " : ""), n, $1 }' |
		sed -e 's#github.com/jurisdns/jurisdns/##g' -e 's#github.com/hashicorp/golang-lru/v2/##g' -e 's/\[[^]]*\]//g')
	local key=${run#"$p"-}
	R[$p.heap_${key%-[0-9]*}]="$mem | $top"
	log "$p: heap after $run (MiB: in use | stacks | cache (entries) | limit | top): $mem | $top"
}

# blast_run PEER WORKLOAD REP (WORKLOAD hit_blast, blocked_blast or
# miss_blast): the hit, blocked or miss queries from bench/blast, pinned to
# CLIENT_CPU. The miss names are a file of their own per repetition, more
# names than a run sends: each goes upstream.
blast_run() {
	local p=$1 w=$2 rep=$3 f=$DATA/q-${2%_blast}.txt run=$1-$2 pid rc=0
	[[ $w == miss_blast ]] && f=$DATA/q-miss-$((REPEAT + rep)).txt
	((REPEAT == 1)) || run+="-$rep"
	settle "$run"
	local t0 c0 t1 c1 q cpu rss us line
	t0=$(now_ns) c0=$(cpu_ticks "${PID[$p]}")
	taskset -c "$CLIENT_CPU" "$BIN/blast" -server "127.0.0.1:${PORT[$p]}" -queries "$f" -duration "${BLAST_SECONDS}s" \
		-sockets "$BLAST_SOCKETS" -outstanding "$BLAST_OUTSTANDING" -timeout "${TIMEOUT}s" -edns="$([[ $EDNS == 1 ]] && echo true || echo false)" \
		>"$OUT/$run.txt" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait "$pid" || rc=$?
	forget "$pid"
	((rc == 0)) || die "blast $run failed; see $OUT/$run.txt (KEEP=1)"
	t1=$(now_ns) c1=$(cpu_ticks "${PID[$p]}")
	rss=$(rss_mib "${PID[$p]}" VmRSS)
	heap_profile "$p" "$run"
	line=$(grep '^blast ' "$OUT/$run.txt" | tail -n 1)
	q=$(blast_field "$line" qps)
	cpu=$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", 100 * c / hz / (ns / 1e9) }')
	us=$(cpu_us $((c1 - c0)) "$(blast_field "$line" answered)")
	DETAILS+=("| $run | ${BUSY[$run]:-?} | $(blast_field "$line" sent) | $(blast_field "$line" lost) | $q | (bench/blast: $(blast_field "$line" mismatched) mismatched) | server CPU ${cpu}%, $(per_cpu "$q" "$cpu") q per CPU-second, ${us} µs CPU per answer, RSS after ${rss} MiB, p50 $(blast_field "$line" p50_ms) ms, p99 $(blast_field "$line" p99_ms) ms under full load |")
	log "$p: $w $(fmt_qps "$q") q/s, lost $(blast_field "$line" lost), server CPU ${cpu}% (${us} µs per answer), RSS ${rss} MiB"
	keep_best "$p" "$w" "$q" "$cpu" "$(blast_field "$line" lost)" "$rss" "$us"
}

# blast_field LINE KEY: KEY's value in bench/blast's last line.
blast_field() { awk -v k="$2" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' <<<"$1"; }

# latency PEER WORKLOAD ROUND: p99 at P99_QPS, into R[PEER.p99_WORKLOAD.ROUND].
# A miss round takes its own slice of q-miss-p99.txt: names no earlier round
# put in the cache.
latency() {
	local p=$1 w=$2 r=$3 f=$DATA/q-${2#do[th]-}.txt run=$1-p99-$2
	((P99_ROUNDS == 1)) || run+="-$r"
	if [[ $w == miss ]]; then
		local n=$((P99_QPS * P99_DURATION * 11 / 10))
		f=$DATA/q-miss-p99-$r.txt
		[[ -s $f ]] || sed -n "$(((r - 1) * n + 1)),$((r * n))p" "$DATA/q-miss-p99.txt" >"$f"
	fi
	transport "$p" "$w"
	settle "$run"
	dnsperf_run "$run" "$TPORT" "$f" "$P99_DURATION" -Q "$P99_QPS" -q 1000 -v "${TARGS[@]}"
	local v
	v=$(p99_of "$run")
	if [[ $v == "?" ]]; then
		# Nothing answered in time: every query took longer than TIMEOUT.
		v=$(awk -v t="$TIMEOUT" 'BEGIN { printf "%.2f", t * 1000 }')
		log "$p: warning: no answer at all in the $w p99 run; p99 given as the timeout, $v ms (a lower bound)"
	fi
	R[$p.p99_$w.$r]=$v
	local lost
	lost=$(lost_n_of "$run")
	if ((${lost:-0} > 0)); then
		note "$run" "$lost lost: the p99 is of the answered ones only"
	else
		note "$run"
	fi
	log "$p: $w p99 $v ms at $P99_QPS q/s$( ((P99_ROUNDS == 1)) || echo " (round $r of $P99_ROUNDS)")"
}

# latency_median PEER WORKLOAD: R[PEER.p99_WORKLOAD], the median of the
# rounds' p99 (the lower middle one of an even number), and
# R[PEER.p99_WORKLOAD_rounds], all of them in round order.
latency_median() {
	local p=$1 w=$2 r all=()
	for ((r = 1; r <= P99_ROUNDS; r++)); do
		all+=("${R[$p.p99_$w.$r]}")
	done
	R[$p.p99_${w}_rounds]=$(
		IFS=,
		echo "${all[*]}" | sed 's/,/, /g'
	)
	R[$p.p99_$w]=$(printf '%s\n' "${all[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
}

# reload PEER: a fixed rate of hit and blocked queries from RELOAD_AT s
# before the reload until RELOAD_TAIL s after the new list is in force (so
# every query lost to the reload has timed out). One name is added to the
# list, the server gets SIGHUP, and the probe waits until that name is blocked.
reload() {
	local p=$1 port=${PORT[$1]} dp pre remark
	settle "$p-reload"
	log "$p: reload under $RELOAD_QPS q/s"
	local -a args=(-s 127.0.0.1 -p "$port" -d "$DATA/q-mixed.txt" -l $((RELOAD_AT + 900))
		-c "$CLIENTS" -T "$THREADS" -t "$TIMEOUT" -Q "$RELOAD_QPS" -q 20000 -S 1)
	[[ $EDNS == 1 ]] && args+=(-e)
	taskset -c "$CLIENT_CPU" dnsperf "${args[@]}" >"$OUT/$p-reload.txt" 2>&1 &
	dp=$!
	PIDS+=("$dp")
	sleep "$RELOAD_AT"
	pre=$("$BIN/probe" -server "127.0.0.1:$port" -name "$added_name" -once)
	[[ $pre != NXDOMAIN ]] || die "$p: $added_name is blocked before the reload"
	PEER_PID=${PID[$p]}
	"reload_$p"
	if ! R[$p.reload]=$("$BIN/probe" -server "127.0.0.1:$port" -name "$added_name" -rcode NXDOMAIN -since "$RELOAD_NS" -timeout "${RELOAD_WAIT}s"); then
		# Never in force: the time waited is a lower bound, and says so.
		R[$p.reload_s]=$(awk -v a="$RELOAD_NS" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
		R[$p.reload]="never (> ${R[$p.reload_s]})"
		log "$p: warning: $added_name was still not blocked ${R[$p.reload_s]} s after the reload; its reload line gives that wait, a lower bound"
	else
		R[$p.reload_s]=${R[$p.reload]}
	fi
	sleep "$RELOAD_TAIL"
	kill -INT "$dp" 2>/dev/null || true
	wait "$dp" || true
	forget "$dp"
	grep -q 'Queries sent' "$OUT/$p-reload.txt" || die "dnsperf $p-reload failed; see $OUT/$p-reload.txt (KEEP=1)"
	R[$p.reload_lost]=$(awk -v q="$RELOAD_QPS" '/Queries lost:/ { printf "%d (%.2f s)", $3, $3 / q }' "$OUT/$p-reload.txt")
	R[$p.reload_lost_n]=$(lost_n_of "$p-reload")
	R[$p.reload_rss]=$(rss_mib "${PID[$p]}" VmRSS)
	# The answered rate per second (dnsperf -S 1) before the reload says
	# whether the server kept up with RELOAD_QPS at all; if not, the lost
	# queries are not all the reload's.
	R[$p.reload_before]=$(awk -v t="${RELOAD_NS:0:-9}" -F': ' '/^[0-9]+\.[0-9]+: [0-9.]+$/ { n++; if (n > 1 && $1 < t) { s += $2; c++ } }
		END { if (c) printf "%.0f", s / c; else print "?" }' "$OUT/$p-reload.txt")
	remark="answered $(fmt_qps "${R[$p.reload_before]}") q/s before the reload"
	if [[ ${R[$p.reload_before]} == "?" ]] || ((R[$p.reload_before] < RELOAD_QPS * 95 / 100)); then
		remark+=", below the offered rate: not every lost query is the reload's"
	fi
	note "$p-reload" "$remark"
	log "$p: new list in force after ${R[$p.reload]} s; lost ${R[$p.reload_lost]} of $(sent_of "$p-reload")"
}

# goroutines_of PEER: go_goroutines from the peer's /metrics (jurisdns).
goroutines_of() {
	curl -s --max-time 5 "http://127.0.0.1:$JURISDNS_ADMIN_PORT/metrics" | awk '$1 == "go_goroutines" { print $2 }'
}

# tcp_flood PEER (jurisdns): one connection pipelines FLOOD_QUERIES queries
# and never reads. RSS and goroutines before, FLOOD_HOLD/2 s into the
# flood, and FLOOD_AFTER s after the connection closed (memory given back?).
tcp_flood() {
	local p=$1 port=${PORT[$1]} pid=${PID[$1]} fl
	settle "$p-tcp-flood"
	log "$p: tcp-flood, $FLOOD_QUERIES pipelined queries on one connection that never reads, ${FLOOD_HOLD}s"
	R[$p.flood_rss_before]=$(rss_mib "$pid" VmRSS)
	"$BIN/flood" -server "127.0.0.1:$port" -name "$hit_name" -n "$FLOOD_QUERIES" -hold "${FLOOD_HOLD}s" >"$OUT/$p-tcp-flood.txt" 2>&1 &
	fl=$!
	PIDS+=("$fl")
	sleep $(((FLOOD_HOLD + 1) / 2))
	R[$p.flood_rss_during]=$(rss_mib "$pid" VmRSS)
	R[$p.flood_goroutines_during]=$(goroutines_of "$p")
	wait "$fl" || true
	forget "$fl"
	sleep "$FLOOD_AFTER"
	kill -0 "$pid" 2>/dev/null || die "$p died after the tcp-flood; see $OUT/$p.log (KEEP=1)"
	R[$p.flood_rss_after]=$(rss_mib "$pid" VmRSS)
	R[$p.flood_goroutines_after]=$(goroutines_of "$p")
	log "$p: tcp-flood RSS ${R[$p.flood_rss_before]} MiB before, ${R[$p.flood_rss_during]} during, ${R[$p.flood_rss_after]} ${FLOOD_AFTER}s after; goroutines ${R[$p.flood_goroutines_during]} during, ${R[$p.flood_goroutines_after]} after; $(cat "$OUT/$p-tcp-flood.txt")"
}

# down PEER: peak RSS, stop.
down() {
	local p=$1 pid=${PID[$1]}
	kill -0 "$pid" 2>/dev/null || die "$p died during the run; see $OUT/$p.log (KEEP=1)"
	R[$p.rss_peak]=$(rss_mib "$pid" VmHWM)
	stop "$pid"
	forget "$pid"
}

bench_all() {
	local p w rep
	for p in $PEERS; do
		case $p in
		limit | unbound | dnsdist | jurisdns) up "$p" ;;
		*) die "unknown peer $p (limit, unbound, dnsdist, jurisdns)" ;;
		esac
	done
	((${#ACTIVE[@]})) || die "no peer to measure"
	# dnstap: jurisdns again with dnstap on, for the hit workload only (it
	# is not a peer: no blocked, miss, p99 or reload runs).
	local tap=0 peers
	if [[ $DNSTAP == 1 && " ${ACTIVE[*]} " == *" jurisdns "* ]]; then
		peers=("${ACTIVE[@]}")
		up dnstap
		ACTIVE=("${peers[@]}")
		tap=1
	fi
	for ((rep = 1; rep <= REPEAT; rep++)); do
		for w in hit $( ((BLAST)) && echo hit_blast) blocked $( ((BLAST)) && echo blocked_blast) miss $( ((BLAST)) && echo miss_blast); do
			log "$w, $([[ $w == *_blast ]] && echo "$BLAST_SECONDS" || echo "$BENCH_SECONDS")s per peer$( ((REPEAT == 1)) || echo ", round $rep of $REPEAT")"
			for p in "${ACTIVE[@]}"; do
				if [[ $w == *_blast ]]; then
					blast_run "$p" "$w" "$rep"
					continue
				fi
				throughput "$p" "$w" "$rep"
				# Right after jurisdns's hit run, the same run with dnstap on.
				if [[ $p == jurisdns && $w == hit && $tap == 1 ]]; then
					throughput dnstap hit "$rep"
				fi
			done
		done
	done
	if ((tap)); then
		R[dnstap.sent]=$(dnstap_metric dnstap_sent_total)
		R[dnstap.dropped]=$(dnstap_metric dnstap_dropped_total)
		log "dnstap: hit $(fmt_qps "${R[dnstap.hit]:-}") q/s with dnstap on, $(fmt_qps "${R[jurisdns.hit]:-}") off; events sent ${R[dnstap.sent]}, dropped ${R[dnstap.dropped]}"
		down dnstap
		stop "$FSTRM_PID"
		forget "$FSTRM_PID"
	fi
	if [[ $ENCRYPTED == 1 ]]; then
		for ((rep = 1; rep <= REPEAT; rep++)); do
			for w in dot-hit doh-hit; do
				log "$w, ${BENCH_SECONDS}s per peer"
				for p in "${ACTIVE[@]}"; do
					[[ -z ${DOT_PORT[$p]:-} ]] || throughput "$p" "$w" "$rep"
				done
			done
		done
	fi
	local r
	for ((r = 1; r <= P99_ROUNDS; r++)); do
		for w in hit blocked miss $([[ $ENCRYPTED == 1 ]] && echo dot-hit); do
			for p in "${ACTIVE[@]}"; do
				[[ $w != do[th]-* || -n ${DOT_PORT[$p]:-} ]] || continue
				latency "$p" "$w" "$r"
			done
		done
	done
	for w in hit blocked miss $([[ $ENCRYPTED == 1 ]] && echo dot-hit); do
		for p in "${ACTIVE[@]}"; do
			[[ $w != do[th]-* || -n ${DOT_PORT[$p]:-} ]] || continue
			latency_median "$p" "$w"
			((P99_ROUNDS == 1)) || log "$p: $w p99 ${R[$p.p99_$w]} ms, the median of ${R[$p.p99_${w}_rounds]}"
		done
	done
	for p in "${ACTIVE[@]}"; do
		[[ $p == limit || $p == dnsdist ]] || reload "$p"
	done
	for p in "${ACTIVE[@]}"; do
		[[ $p != jurisdns ]] || tcp_flood "$p"
	done
	for p in "${ACTIVE[@]}"; do
		down "$p"
	done
}

# ---- the RPZ feed ---------------------------------------------------------------
# rpz_feed: the list as an RPZ zone (one "name CNAME ." per listed name)
# served by a second knot; a jurisdns whose only source is that zone by
# transfer. axfr: from process start until a listed name gets NXDOMAIN (the
# AXFR, the parse, the index), and the RSS then. ixfr: under the reload
# load (dnsperf at RELOAD_QPS), a knotc transaction adds 10 names; from the
# commit until the last of them gets NXDOMAIN (knot's NOTIFY, the IXFR, the
# delta), and the queries lost.
rpz_feed() {
	local d=$WORK/rpz zone=rpzfeed.bench. pid dp i commit_ns last
	mkdir -p "$d/knot/run" "$d/knot/db" "$d/jurisdns"
	log "rpz: the list as the RPZ zone $zone ($LIST_SIZE triggers)"
	awk -v z="$zone" 'BEGIN { print "$ORIGIN " z; print "@ 3600 IN SOA localhost. admin." z " 1 3600 600 86400 60"; print "@ 3600 IN NS localhost." }
		/^#/ || NF == 0 { next } { print $1 " 60 IN CNAME ." }' "$DATA/list.txt" >"$d/knot/rpz.db"
	cat >"$d/knot/knot.conf" <<EOF
server:
    rundir: "$d/knot/run"
    listen: 127.0.0.1@$KNOT_RPZ_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "$d/knot/run/knot.sock"
database:
    storage: "$d/knot/db"
log:
  - target: stderr
    any: warning
remote:
  - id: jurisdns
    address: 127.0.0.1@$JURISDNS_RPZ_PORT
acl:
  - id: xfr
    address: 127.0.0.0/8
    action: transfer
template:
  - id: default
    storage: "$d/knot"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    semantic-checks: off
zone:
  - domain: $zone
    file: "$d/knot/rpz.db"
    acl: xfr
    notify: jurisdns
EOF
	start "$OUT/knot-rpz.log" taskset -c "$KNOT_CPU" knotd -c "$d/knot/knot.conf"
	"$BIN/probe" -server "127.0.0.1:$KNOT_RPZ_PORT" -name "$ready_name.$zone" -rcode NOERROR -timeout 120s >/dev/null ||
		die "knot (rpz) did not load $zone; see $OUT/knot-rpz.log (KEEP=1)"
	pin_threads "$LAST" "$KNOT_CPU"
	cat >"$d/jurisdns/jurisdns.yaml" <<EOF
listen: ["127.0.0.1:$JURISDNS_RPZ_PORT"]
upstreams: {servers: ["127.0.0.1:$KNOT_PORT"], strategy: failover, timeout: 2s}
cache: {size: 200000}
access: {allow: [127.0.0.0/8]}
admin: "127.0.0.1:$JURISDNS_RPZ_ADMIN_PORT"
log: {level: info}
lists: {cache_dir: "$d/jurisdns/cache", timeout: 120s}
default_jurisdictions: [bench]
jurisdictions:
  - id: bench
    title: Benchmark RPZ feed
    tier: mandated
    on_load_failure: fail_closed
    sources: [{name: feed, transfer: {zone: $zone, primaries: ["127.0.0.1:$KNOT_RPZ_PORT"]}}]
EOF
	settle "rpz-axfr"
	START_NS=$(now_ns)
	start "$OUT/jurisdns-rpz.log" taskset -c "$SERVER_CPU" "$BIN/jurisdns" serve --config "$d/jurisdns/jurisdns.yaml"
	pid=$LAST
	R[rpz.axfr]=$("$BIN/probe" -server "127.0.0.1:$JURISDNS_RPZ_PORT" -name "$ready_name" -rcode NXDOMAIN -since "$START_NS" -timeout 10m) ||
		die "jurisdns (rpz) never blocked $ready_name; see $OUT/jurisdns-rpz.log (KEEP=1)"
	R[rpz.axfr_rss]=$(rss_mib "$pid" VmRSS)
	log "rpz: AXFR of $LIST_SIZE triggers in force ${R[rpz.axfr]} s after start, RSS ${R[rpz.axfr_rss]} MiB"

	settle "rpz-ixfr"
	local -a args=(-s 127.0.0.1 -p "$JURISDNS_RPZ_PORT" -d "$DATA/q-mixed.txt" -l $((RELOAD_AT + 900))
		-c "$CLIENTS" -T "$THREADS" -t "$TIMEOUT" -Q "$RELOAD_QPS" -q 20000 -S 1)
	[[ $EDNS == 1 ]] && args+=(-e)
	taskset -c "$CLIENT_CPU" dnsperf "${args[@]}" >"$OUT/rpz-ixfr.txt" 2>&1 &
	dp=$!
	PIDS+=("$dp")
	sleep "$RELOAD_AT"
	last=rpz-added-10.bench-added.com
	knotc -s "$d/knot/run/knot.sock" zone-begin "$zone" >/dev/null
	for ((i = 1; i <= 10; i++)); do
		knotc -s "$d/knot/run/knot.sock" zone-set "$zone" "rpz-added-$i.bench-added.com.$zone" 60 CNAME . >/dev/null
	done
	commit_ns=$(now_ns)
	knotc -s "$d/knot/run/knot.sock" zone-commit "$zone" >/dev/null
	R[rpz.ixfr]=$("$BIN/probe" -server "127.0.0.1:$JURISDNS_RPZ_PORT" -name "$last" -rcode NXDOMAIN -since "$commit_ns" -timeout "${RELOAD_WAIT}s") ||
		log "rpz: warning: $last not blocked ${RELOAD_WAIT} s after the commit"
	sleep "$RELOAD_TAIL"
	kill -INT "$dp" 2>/dev/null || true
	wait "$dp" || true
	forget "$dp"
	grep -q 'Queries sent' "$OUT/rpz-ixfr.txt" || die "dnsperf rpz-ixfr failed; see $OUT/rpz-ixfr.txt (KEEP=1)"
	R[rpz.ixfr_lost]=$(lost_n_of "rpz-ixfr")
	log "rpz: 10-name IXFR in force ${R[rpz.ixfr]:-never} s after the commit; lost ${R[rpz.ixfr_lost]} of $(sent_of rpz-ixfr)"
	grep -q 'zone delta applied' "$OUT/jurisdns-rpz.log" || log "rpz: note: the change was not applied as a delta (see $OUT/jurisdns-rpz.log)"
	stop "$pid"
	forget "$pid"
}

# ---- report -------------------------------------------------------------------
DETAILS=()
MARK_BEGIN="<!-- bench:begin -->"
MARK_END="<!-- bench:end -->"

# markers_ok FILE: FILE has exactly one begin and one end marker line, in that order.
markers_ok() {
	awk -v b="$MARK_BEGIN" -v e="$MARK_END" '$0 == b { nb++; lb = NR } $0 == e { ne++; le = NR }
		END { exit !(nb == 1 && ne == 1 && lb < le) }' "$1" 2>/dev/null
}

# full_run: a default-shaped run (not QUICK, every peer of ALL_PEERS, the
# 1M list, the bench/blast runs).
# Sets NOT_FULL to why not.
full_run() {
	NOT_FULL=""
	[[ $QUICK != 1 ]] || NOT_FULL+="QUICK=1, "
	[[ $LIST_SIZE == 1000000 ]] || NOT_FULL+="LIST_SIZE=$LIST_SIZE, "
	local p seen=" " n=0
	for p in $PEERS; do
		[[ $seen == *" $p "* ]] || { seen+="$p "; n=$((n + 1)); }
	done
	local all=1
	for p in $ALL_PEERS; do
		[[ $seen == *" $p "* ]] || all=0
	done
	((all && n == $(wc -w <<<"$ALL_PEERS"))) || NOT_FULL+="PEERS=\"$PEERS\", "
	[[ $BLAST == 1 ]] || NOT_FULL+="BLAST=0, "
	for p in $PEERS; do
		[[ -z ${R[$p.skip]:-} ]] || NOT_FULL+="$p ${R[$p.skip]}, "
	done
	NOT_FULL=${NOT_FULL%, }
	[[ -z $NOT_FULL ]]
}

# will_write_benchmarks: whether the table goes into BENCHMARKS_FILE.
will_write_benchmarks() {
	case $WRITE_BENCHMARKS in
	1) return 0 ;;
	0) return 1 ;;
	*) full_run ;;
	esac
}

# check_benchmarks_file: before anything runs, so a broken BENCHMARKS.md
# does not cost a whole run.
check_benchmarks_file() {
	will_write_benchmarks || return 0
	markers_ok "$BENCHMARKS_FILE" ||
		die "$BENCHMARKS_FILE needs exactly one line '$MARK_BEGIN' followed by one line '$MARK_END' (the table goes between them); or set WRITE_BENCHMARKS=0"
}

# result_lines: one line per peer and workload, for other scripts; every
# value a number. Skipped peers get none (and a message on stderr).
result_lines() {
	local p w line
	local -a lines=()
	for p in $PEERS; do
		if [[ -n ${R[$p.skip]:-} ]]; then
			log "$p: no result lines ($p ${R[$p.skip]})"
			continue
		fi
		for w in hit blocked miss; do
			lines+=("bench server=$p workload=$w qps=${R[$p.$w]:-} lost=${R[$p.${w}_lost]:-} p99_ms=${R[$p.p99_$w]:-} rss_mb=${R[$p.${w}_rss]:-} cpu_us=${R[$p.${w}_us]:-}")
		done
		for w in hit_blast blocked_blast miss_blast; do
			[[ -n ${R[$p.$w]:-} ]] || continue
			lines+=("bench server=$p workload=$w qps=${R[$p.$w]:-} lost=${R[$p.${w}_lost]:-} rss_mb=${R[$p.${w}_rss]:-} cpu_us=${R[$p.${w}_us]:-}")
		done
		if [[ -n ${R[$p.dot-hit]:-} ]]; then
			lines+=("bench server=$p workload=dot-hit qps=${R[$p.dot-hit]:-} lost=${R[$p.dot-hit_lost]:-} p99_ms=${R[$p.p99_dot-hit]:-} rss_mb=${R[$p.dot-hit_rss]:-} cpu_us=${R[$p.dot-hit_us]:-}")
			lines+=("bench server=$p workload=doh-hit qps=${R[$p.doh-hit]:-} lost=${R[$p.doh-hit_lost]:-} rss_mb=${R[$p.doh-hit_rss]:-} cpu_us=${R[$p.doh-hit_us]:-}")
		fi
	done
	for p in $PEERS; do
		[[ $p != limit && $p != dnsdist && -z ${R[$p.skip]:-} ]] || continue
		lines+=("bench server=$p workload=reload lost=${R[$p.reload_lost_n]:-} seconds=${R[$p.reload_s]:-} rss_mb=${R[$p.reload_rss]:-}")
	done
	for p in $PEERS; do
		[[ $p != limit && -z ${R[$p.skip]:-} ]] || continue
		lines+=("bench server=$p workload=ready seconds=${R[$p.ready]:-} rss_mb=${R[$p.rss_ready]:-}")
	done
	for p in $PEERS; do
		[[ $p == jurisdns && -z ${R[$p.skip]:-} ]] || continue
		lines+=("bench server=$p workload=tcp-flood rss_before_mb=${R[$p.flood_rss_before]:-} rss_during_mb=${R[$p.flood_rss_during]:-} goroutines_during=${R[$p.flood_goroutines_during]:-} rss_after_mb=${R[$p.flood_rss_after]:-} goroutines_after=${R[$p.flood_goroutines_after]:-} after_s=$FLOOD_AFTER")
	done
	if [[ -n ${R[rpz.axfr]:-} ]]; then
		lines+=("bench server=jurisdns workload=axfr seconds=${R[rpz.axfr]:-} rss_mb=${R[rpz.axfr_rss]:-}")
		lines+=("bench server=jurisdns workload=ixfr seconds=${R[rpz.ixfr]:-} lost=${R[rpz.ixfr_lost]:-}")
	fi
	if [[ -n ${R[dnstap.hit]:-} ]]; then
		lines+=("bench server=jurisdns workload=hit_dnstap qps=${R[dnstap.hit]} lost=${R[dnstap.hit_lost]:-} sent=${R[dnstap.sent]:-} dropped=${R[dnstap.dropped]:-}")
	fi
	for line in "${lines[@]}"; do
		# Every key=value must be a plain number; a line that is not is
		# left out rather than printed with a value a script would misread.
		if awk '{ for (i = 4; i <= NF; i++) { split($i, kv, "="); if (kv[2] !~ /^[0-9]+(\.[0-9]+)?$/) exit 1 } }' <<<"$line"; then
			echo "$line"
		else
			log "warning: left out, a value is not a number: $line"
		fi
	done
}

report() {
	local p cmd when results
	cmd="${ENV_GIVEN}bench/run.sh"
	when=$(date -u '+%Y-%m-%d %H:%M UTC')
	mkdir -p "$RESULTS_DIR"
	results=$RESULTS_DIR/$(date +%Y-%m-%d)
	if [[ $QUICK == 1 ]]; then results+=-quick; fi
	results+=.md
	[[ -e $results ]] && results=${results%.md}-$(date +%H%M%S).md
	{
		echo "Command: \`$cmd\` (whole run $((SECONDS / 60)) min $((SECONDS % 60)) s, build and data included)."
		echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)."
		echo "Versions: $(dnsperf -h 2>&1 | awk '/^Version/ { print "dnsperf " $2 }'), unbound $(unbound -V 2>/dev/null | awk '/^Version/ { print $2 }'), dnsdist $(dnsdist --version 2>/dev/null | awk 'NR == 1 { print $2 }'), $(knotd -V | awk '{ print "knot " $NF }'), $(go version | awk '{ print $3 }'), jurisdns $BUILT."
		echo "Setup: server on cpu $SERVER_CPU, dnsperf on cpu $CLIENT_CPU, knot (upstream) on cpu $KNOT_CPU; dnsperf -c $CLIENTS -T $THREADS -q $OUTSTANDING -t $TIMEOUT$([[ $EDNS == 1 ]] && echo ' -e'); list $LIST_SIZE names (suffix match / Unbound always_nxdomain / dnsdist SuffixMatchNode); ${BENCH_SECONDS}s per throughput run$( ((BLAST)) && echo "; bench/blast -sockets $BLAST_SOCKETS -outstanding $BLAST_OUTSTANDING for ${BLAST_SECONDS}s on cpu $CLIENT_CPU")."
	} >"$OUT/head.md"
	{
		echo "| peer | hit q/s | blocked q/s | miss q/s | p99 hit ms | p99 blocked ms | p99 miss ms | ready s | RSS ready MiB | RSS peak MiB | reload: in force s | reload: lost |"
		echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
		for p in $PEERS; do
			if [[ -n ${R[$p.skip]:-} ]]; then
				echo "| $p | ${R[$p.skip]} |||||||||||"
				continue
			fi
			printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$p" \
				"$(fmt_qps "${R[$p.hit]:-}")" "$(fmt_qps "${R[$p.blocked]:-}")" "$(fmt_qps "${R[$p.miss]:-}")" \
				"${R[$p.p99_hit]:-–}" "${R[$p.p99_blocked]:-–}" "${R[$p.p99_miss]:-–}" \
				"${R[$p.ready]:-–}" "${R[$p.rss_ready]:-–}" "${R[$p.rss_peak]:-–}" \
				"${R[$p.reload]:-–}" "${R[$p.reload_lost]:-–}"
		done
		echo
		echo "Per CPU-second of the server (q/s ÷ the share of a core the server got during the run; steadier than q/s when the machine is not idle; for miss the upstream path, not the server, may be the limit):"
		echo
		echo "| peer | hit q/CPU-s | blocked q/CPU-s | miss q/CPU-s | server CPU % (hit, blocked, miss) | µs CPU per answer (hit, blocked, miss) |"
		echo "|---|--:|--:|--:|---|---|"
		for p in $PEERS; do
			[[ -z ${R[$p.skip]:-} ]] || continue
			printf '| %s | %s | %s | %s | %s, %s, %s | %s, %s, %s |\n' "$p" \
				"$(per_cpu "${R[$p.hit]:-}" "${R[$p.hit_cpu]:-}")" "$(per_cpu "${R[$p.blocked]:-}" "${R[$p.blocked_cpu]:-}")" \
				"$(per_cpu "${R[$p.miss]:-}" "${R[$p.miss_cpu]:-}")" "${R[$p.hit_cpu]:-?}" "${R[$p.blocked_cpu]:-?}" "${R[$p.miss_cpu]:-?}" \
				"${R[$p.hit_us]:-?}" "${R[$p.blocked_us]:-?}" "${R[$p.miss_us]:-?}"
		done
		if ((BLAST)); then
			echo
			echo "The workloads again with bench/blast (batched closed loop, sendmmsg/recvmmsg, $BLAST_SOCKETS sockets × $BLAST_OUTSTANDING in flight, on cpu $CLIENT_CPU), where one dnsperf is the limit (hit, blocked) or spreads the queries thin (miss: fewer per system call):"
			echo
			echo "| peer | hit q/s | blocked q/s | miss q/s | hit q/CPU-s | blocked q/CPU-s | miss q/CPU-s | server CPU % (hit, blocked, miss) | µs CPU per answer (hit, blocked, miss) | lost (hit, blocked, miss) |"
			echo "|---|--:|--:|--:|--:|--:|--:|---|---|---|"
			for p in $PEERS; do
				[[ -z ${R[$p.skip]:-} ]] || continue
				printf '| %s | %s | %s | %s | %s | %s | %s | %s, %s, %s | %s, %s, %s | %s, %s, %s |\n' "$p" \
					"$(fmt_qps "${R[$p.hit_blast]:-}")" "$(fmt_qps "${R[$p.blocked_blast]:-}")" "$(fmt_qps "${R[$p.miss_blast]:-}")" \
					"$(per_cpu "${R[$p.hit_blast]:-}" "${R[$p.hit_blast_cpu]:-}")" "$(per_cpu "${R[$p.blocked_blast]:-}" "${R[$p.blocked_blast_cpu]:-}")" \
					"$(per_cpu "${R[$p.miss_blast]:-}" "${R[$p.miss_blast_cpu]:-}")" \
					"${R[$p.hit_blast_cpu]:-?}" "${R[$p.blocked_blast_cpu]:-?}" "${R[$p.miss_blast_cpu]:-?}" \
					"${R[$p.hit_blast_us]:-?}" "${R[$p.blocked_blast_us]:-?}" "${R[$p.miss_blast_us]:-?}" \
					"${R[$p.hit_blast_lost]:-?}" "${R[$p.blocked_blast_lost]:-?}" "${R[$p.miss_blast_lost]:-?}"
			done
		fi
		echo
		echo "Memory: the server's VmRSS (MiB) when ready, right after each throughput run in the order they ran, and its peak (VmHWM) at the end:"
		echo
		echo "| peer | ready | after hit | $( ((BLAST)) && echo "after hit (blast) | ")after blocked | $( ((BLAST)) && echo "after blocked (blast) | ")after miss | $( ((BLAST)) && echo "after miss (blast) | ")peak |"
		echo "|---|--:|--:|--:|$( ((BLAST)) && echo "--:|--:|--:|")--:|--:|"
		for p in $PEERS; do
			[[ -z ${R[$p.skip]:-} ]] || continue
			printf '| %s | %s | %s | ' "$p" "${R[$p.rss_ready]:-–}" "${R[$p.hit_rss]:-–}"
			((BLAST)) && printf '%s | ' "${R[$p.hit_blast_rss]:-–}"
			printf '%s | ' "${R[$p.blocked_rss]:-–}"
			((BLAST)) && printf '%s | ' "${R[$p.blocked_blast_rss]:-–}"
			printf '%s | ' "${R[$p.miss_rss]:-–}"
			((BLAST)) && printf '%s | ' "${R[$p.miss_blast_rss]:-–}"
			printf '%s |\n' "${R[$p.rss_peak]:-–}"
		done
		if [[ $ENCRYPTED == 1 ]]; then
			echo
			echo "Encrypted transports (the hit workload; Unbound serves its own DoT and DoH; one self-signed certificate for both):"
			echo
			echo "| peer | DoT hit q/s | DoH hit q/s | p99 DoT hit ms | DoT hit q/CPU-s | DoH hit q/CPU-s |"
			echo "|---|--:|--:|--:|--:|--:|"
			for p in $PEERS; do
				[[ -z ${R[$p.skip]:-} && -n ${R[$p.dot-hit]:-} ]] || continue
				printf '| %s | %s | %s | %s | %s | %s |\n' "$p" \
					"$(fmt_qps "${R[$p.dot-hit]:-}")" "$(fmt_qps "${R[$p.doh-hit]:-}")" "${R[$p.p99_dot-hit]:-–}" \
					"$(per_cpu "${R[$p.dot-hit]:-}" "${R[$p.dot-hit_cpu]:-}")" "$(per_cpu "${R[$p.doh-hit]:-}" "${R[$p.doh-hit_cpu]:-}")"
			done
		fi
		if [[ -n $PROFILE_DIR && -n ${R[jurisdns.heap_hit]:-} ]]; then
			echo
			echo "jurisdns's Go heap right after each throughput run (after a forced GC: what is live; heap profiles in PROFILE_DIR, \`go tool pprof -sample_index=inuse_space\`); MiB:"
			echo
			echo "| after | RSS | heap in use | stacks | cache (entries) | memory limit | largest live allocation sites (pprof, flat) |"
			echo "|---|--:|--:|--:|--:|--:|---|"
			for w in hit hit_blast blocked blocked_blast miss miss_blast; do
				[[ -n ${R[jurisdns.heap_$w]:-} ]] || continue
				echo "| $w | ${R[jurisdns.${w}_rss]:-?} | ${R[jurisdns.heap_$w]} |"
			done
		fi
		echo
		echo "hit: $(wc -l <"$DATA/q-hit.txt") queries over 1000 names under the upstream zone, cache warmed first."
		echo "blocked: names of the list or below them. miss: unique names, each sent once, answered by the upstream."
		echo "p99: at a fixed $P99_QPS q/s for ${P99_DURATION}s (answered queries; limit's p99 is what dnsperf and the machine add by themselves)$( ((P99_ROUNDS == 1)) || echo "; the median of $P99_ROUNDS rounds, each running every peer and workload once in turn (each round's below)"). ready: from process start until a listed name gets NXDOMAIN."
		local ready_where=""
		for p in $PEERS; do
			[[ -z ${R[$p.ready_sched]:-} ]] || ready_where+="${ready_where:+; }$p: ${R[$p.ready_sched]}"
		done
		[[ -z $ready_where ]] || echo "ready, the server's CPU until then (schedstat and /proc/PID/stat): $ready_where."
		if ((P99_ROUNDS > 1)); then
			echo
			echo "| peer | p99 hit ms, each round | p99 blocked ms | p99 miss ms | p99 DoT hit ms |"
			echo "|---|---|---|---|---|"
			for p in $PEERS; do
				[[ -n ${R[$p.p99_hit_rounds]:-} ]] || continue
				echo "| $p | ${R[$p.p99_hit_rounds]} | ${R[$p.p99_blocked_rounds]:-–} | ${R[$p.p99_miss_rounds]:-–} | ${R[$p.p99_dot-hit_rounds]:-–} |"
			done
			echo
		fi
		echo "reload: dnsperf at $RELOAD_QPS q/s (hit+blocked) from ${RELOAD_AT}s before until ${RELOAD_TAIL}s after the reload; one name added to the list, then SIGHUP. in force: from SIGHUP until that name gets NXDOMAIN. lost: queries unanswered within ${TIMEOUT}s (and the seconds of traffic that is at $RELOAD_QPS q/s)."
		echo "busy before: CPU use of the whole machine in the second before a run (our servers idle then); above ~${IDLE_PCT}% other work was running and the numbers of that run are low and noisy. Highest: $(printf '%s\n' "${BUSY[@]}" | sort -n | tail -n 1)%."
		echo "limit: a bare miekg/dns server (bench/limit) that answers every query at once: the ceiling for a resolver built on that library."
		echo "dnsdist: a caching proxy (packet cache of 100,000 entries, the list as a SuffixMatchNode answering NXDOMAIN) in front of the same knot; it has no reload of its list on SIGHUP, so no reload run."
		if [[ -n ${R[dnstap.hit]:-} ]]; then
			echo
			echo "dnstap (target: hit with dnstap on ≥ 0.8 × hit with it off): jurisdns with dnstap on (client and forwarder messages over a unix socket to fstrm_capture writing to /dev/null, fstrm_capture on cpu $CLIENT_CPU with dnsperf), the hit workload right after jurisdns's own hit run:"
			echo
			echo "| jurisdns hit q/s, dnstap off | dnstap on | on ÷ off | server CPU % (off, on) | events sent | events dropped |"
			echo "|--:|--:|--:|---|--:|--:|"
			printf '| %s | %s | %s | %s, %s | %s | %s |\n' "$(fmt_qps "${R[jurisdns.hit]:-}")" "$(fmt_qps "${R[dnstap.hit]}")" \
				"$(awk -v a="${R[dnstap.hit]}" -v b="${R[jurisdns.hit]:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')" \
				"${R[jurisdns.hit_cpu]:-?}" "${R[dnstap.hit_cpu]:-?}" "${R[dnstap.sent]:-?}" "${R[dnstap.dropped]:-?}"
			echo
			echo "Dropped events mean the writer or the collector fell behind: the queries were answered, their dnstap messages lost (and counted)."
		fi
	} >"$OUT/tables.md"
	{
		echo "# jurisdns benchmark, $when"
		echo
		cat "$OUT/head.md"
		echo
		cat "$OUT/tables.md"
		echo
		echo "<details><summary>every run</summary>"
		echo
		echo "| run | busy before % | sent | lost | q/s | response codes | remark |"
		echo "|---|--:|--:|--:|--:|---|---|"
		printf '%s\n' "${DETAILS[@]}"
		echo
		echo "</details>"
	} >"$OUT/report.md"
	cp "$OUT/report.md" "$results"
	echo
	cat "$OUT/report.md"
	echo
	log "table written to ${results#"$ROOT"/}"
	write_benchmarks "$when" "${results#"$ROOT"/}"
	result_lines
}

# write_benchmarks WHEN RESULTS: the table into BENCHMARKS_FILE, between
# the markers, on a full run (or as WRITE_BENCHMARKS says).
write_benchmarks() {
	local when=$1 results=$2 f=$BENCHMARKS_FILE
	if ! will_write_benchmarks; then
		if [[ $WRITE_BENCHMARKS == 0 ]]; then
			log "${f#"$ROOT"/} not written (WRITE_BENCHMARKS=0)"
		else
			log "${f#"$ROOT"/} not written: not a full run ($NOT_FULL); WRITE_BENCHMARKS=1 writes it anyway"
		fi
		return 0
	fi
	markers_ok "$f" || { log "error: ${f#"$ROOT"/} not written: it lost its '$MARK_BEGIN' / '$MARK_END' lines during the run"; return 0; }
	{
		echo "<!-- Written by bench/run.sh (a full run, or WRITE_BENCHMARKS=1): everything up to bench:end is replaced by the next run. -->"
		echo
		echo "Run of $when; every run's details in \`$results\`."
		cat "$OUT/head.md"
		echo
		cat "$OUT/tables.md"
		echo
	} >"$OUT/benchmarks-block.md"
	awk -v b="$MARK_BEGIN" -v e="$MARK_END" -v blk="$OUT/benchmarks-block.md" '
		$0 == b { print; while ((getline l < blk) > 0) print l; skip = 1; next }
		$0 == e { skip = 0 }
		!skip { print }' "$f" >"$OUT/BENCHMARKS.md.new"
	cat "$OUT/BENCHMARKS.md.new" >"$f"
	log "table written to ${f#"$ROOT"/} (between '$MARK_BEGIN' and '$MARK_END')"
}

# ---- main -------------------------------------------------------------------------
check_ports
check_benchmarks_file
install_missing
command -v go >/dev/null || die "go not found in PATH"
check_encrypted
build
make_cert
generate
start_knot
bench_all
if [[ $RPZ == 1 && " $PEERS " == *" jurisdns "* && $HAVE_JURISDNS == 1 ]]; then
	rpz_feed
fi
report
