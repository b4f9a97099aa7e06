# bench/lib.sh: what bench/run and bench/answers share; sourced, not run.
# The callers set W, their work directory, before calling wait_port.

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "FAIL: $*"
	exit 1
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Ports come from below the kernel's ephemeral range, so that no outgoing
# connection (of this run or anything else on the machine) can hold one.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
# pick_port VAR: sets VAR to a free port no other VAR got (in this shell,
# not a subshell, so that TAKEN keeps every port picked).
pick_port() {
	local p
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
		if port_free "$p" && [[ " ${TAKEN:-} " != *" $p "* ]]; then
			TAKEN="${TAKEN:-} $p"
			printf -v "$1" '%s' "$p"
			return
		fi
	done
	die "no free port found"
}
wait_port() { # port pid name
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || die "$3 exited at startup (see $W)"
		sleep 0.05
	done
	die "$3 did not listen on port $1"
}
