# bench/lib.sh — what bench/run.sh and bench/cpu.sh both write: knot's
# configuration for the benchmark's zone and jurisdns's configuration with
# the benchmark's list. Sourced, not run.

# knot_conf DIR PORT ZONE ZONEFILE: knotd's configuration (on stdout) for
# one worker of each kind on 127.0.0.1@PORT, serving ZONE from ZONEFILE,
# with its rundir (DIR/run), storage (DIR/db, created) and state in DIR.
knot_conf() {
	local dir=$1 port=$2 zone=$3 file=$4
	mkdir -p "$dir/run" "$dir/db"
	cat <<EOF
server:
    rundir: "$dir/run"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$dir/db"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$dir"
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: $zone
    file: "$file"
EOF
}

# pin_threads PID CPU: every thread of process PID onto CPU. knotd pins
# each UDP worker thread itself (worker i to CPU i modulo the CPUs online),
# over the mask taskset gave the process: its first worker then ran on the
# server's core, beside the server under test, taking that core's time
# from every peer's miss runs. Call it once knot answers (its workers run).
pin_threads() {
	taskset -a -pc "$2" "$1" >/dev/null
}

# jurisdns_conf PORT ADMIN_PORT UPSTREAM_PORT LIST PPROF: jurisdns's
# configuration (on stdout): UDP and TCP on 127.0.0.1:PORT, the admin
# server on ADMIN_PORT (with /debug/pprof when PPROF is true), knot on
# 127.0.0.1:UPSTREAM_PORT as the upstream, the benchmark's cache size
# (100,000), and one mandated jurisdiction whose list is LIST (domains,
# suffix match).
jurisdns_conf() {
	cat <<EOF
listen: ["127.0.0.1:$1"]
upstreams: {servers: ["127.0.0.1:$3"], strategy: failover, timeout: 2s}
cache: {size: 100000}
access: {allow: [127.0.0.0/8]}
admin: "127.0.0.1:$2"
admin_pprof: $5
log: {level: warn}
default_jurisdictions: [bench]
jurisdictions:
  - id: bench
    title: Benchmark list
    tier: mandated
    ede: 16
    sources: [{name: bench-list, path: "$4", format: domains, match: suffix}]
EOF
}
