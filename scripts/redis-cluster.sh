#!/usr/bin/env bash
# scripts/redis-cluster.sh — a throwaway 3-master Redis Cluster on loopback.
#
#   scripts/redis-cluster.sh start DIR PORT1 PORT2 PORT3
#       Starts three `redis-server --cluster-enabled yes` nodes on 127.0.0.1 at
#       those ports (cluster bus on PORT+10000), keeping config, logs and pid
#       files under DIR/PORT/, nothing persisted. Creates the cluster with
#       `redis-cli --cluster create ... --cluster-replicas 0` and waits until
#       every node reports cluster_state:ok. On failure: prints the logs, kills
#       the nodes it started, exits non-zero (DIR is kept for inspection).
#
#   scripts/redis-cluster.sh stop DIR
#       Kills the nodes by their pid files and removes DIR.
#
# Environment: CLUSTER_WAIT_SECONDS (default 30) bounds each wait.
#
# The Go tests do not run this script: internal/testenv (StartCluster,
# SharedCluster) starts the same nodes, with the same arguments and DIR/PORT/
# layout, in the foreground as children of the test binary with a death
# signal, so a test binary that panics, times out or is killed cannot leave
# them running. `stop DIR` works on their directories too.
set -euo pipefail

WAIT_SECONDS="${CLUSTER_WAIT_SECONDS:-30}"

usage() {
	echo "usage: $0 start DIR PORT1 PORT2 PORT3" >&2
	echo "       $0 stop DIR" >&2
	exit 2
}

# is_redis_pid PID: the process exists and is a redis-server (so a stale pid
# file never makes us kill an unrelated process).
is_redis_pid() {
	[ -n "$1" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'redis-server'
}

kill_nodes() { # kill_nodes DIR
	local dir="$1" pidfile pid pids=()
	for pidfile in "$dir"/*/redis.pid; do
		[ -f "$pidfile" ] || continue
		pid="$(cat "$pidfile" 2>/dev/null || true)"
		if is_redis_pid "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done
	# Wait (bounded) until they are gone so their ports are free again.
	local deadline=$((SECONDS + 10))
	for pid in "${pids[@]}"; do
		while [ -d "/proc/$pid" ] && ! grep -qs '^State:.*Z' "/proc/$pid/status"; do
			[ "$SECONDS" -lt "$deadline" ] || break
			sleep 0.05
		done
	done
}

show_logs() { # show_logs DIR
	local f
	for f in "$1"/create.log "$1"/*/redis.log; do
		[ -f "$f" ] || continue
		echo "----- $f (last 40 lines)" >&2
		tail -n 40 "$f" >&2
	done
}

fail() { # fail DIR MESSAGE
	echo "redis-cluster: ERROR: $2" >&2
	show_logs "$1"
	kill_nodes "$1"
	exit 1
}

cli() { # cli PORT ARGS... — bounded so a hung node cannot hang us
	timeout 5 redis-cli -h 127.0.0.1 -p "$@" </dev/null 2>/dev/null
}

# node_up DIR PORT: the server answering on PORT is the one we started (its
# process_id matches our pid file), never some other server on that port.
node_up() {
	local pid
	pid="$(cat "$1/$2/redis.pid" 2>/dev/null || true)"
	[ -n "$pid" ] &&
		[ "$(cli "$2" info server | tr -d '\r' | sed -n 's/^process_id://p')" = "$pid" ]
}

start() {
	[ $# -eq 4 ] || usage
	local dir="$1"
	shift
	local ports=("$@") p
	for p in "${ports[@]}"; do
		[[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 55535 ] ||
			{ echo "redis-cluster: bad port '$p' (1..55535: the bus port is PORT+10000)" >&2; exit 2; }
	done
	command -v redis-server >/dev/null 2>&1 || { echo "redis-cluster: redis-server not found (run scripts/services.sh)" >&2; exit 1; }
	command -v redis-cli >/dev/null 2>&1 || { echo "redis-cluster: redis-cli not found (apt-get install redis-tools)" >&2; exit 1; }

	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	for p in "${ports[@]}"; do
		mkdir -p "$dir/$p"
		rm -f "$dir/$p/nodes.conf"
		# --daemonize closes stdio; redirect anyway so no caller pipe is held.
		redis-server --port "$p" --bind 127.0.0.1 \
			--cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" \
			--cluster-node-timeout 5000 \
			--dir "$dir/$p" --save "" --appendonly no \
			--daemonize yes --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log" \
			</dev/null >/dev/null 2>&1 || fail "$dir" "redis-server on port $p did not start"
	done

	local deadline=$((SECONDS + WAIT_SECONDS))
	for p in "${ports[@]}"; do
		until node_up "$dir" "$p"; do
			if grep -qsE 'aborting|Fatal|FATAL' "$dir/$p/redis.log"; then
				fail "$dir" "node 127.0.0.1:$p failed to start"
			fi
			[ "$SECONDS" -lt "$deadline" ] || fail "$dir" "node 127.0.0.1:$p does not answer after ${WAIT_SECONDS}s"
			sleep 0.1
		done
	done

	redis-cli --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}" \
		--cluster-replicas 0 --cluster-yes </dev/null >"$dir/create.log" 2>&1 ||
		fail "$dir" "redis-cli --cluster create failed"

	local info
	deadline=$((SECONDS + WAIT_SECONDS))
	for p in "${ports[@]}"; do
		until info="$(cli "$p" cluster info)" &&
			grep -q '^cluster_state:ok' <<<"$info" &&
			grep -q '^cluster_known_nodes:3' <<<"$info"; do
			[ "$SECONDS" -lt "$deadline" ] || fail "$dir" "node 127.0.0.1:$p not cluster_state:ok with 3 known nodes after ${WAIT_SECONDS}s"
			sleep 0.1
		done
	done
	echo "redis-cluster: ok, 3 masters on 127.0.0.1:${ports[0]},${ports[1]},${ports[2]} (dir $dir)"
}

stop() {
	[ $# -eq 1 ] || usage
	local dir="$1"
	[ -d "$dir" ] || return 0
	kill_nodes "$dir"
	rm -rf "$dir"
}

[ $# -ge 1 ] || usage
verb="$1"
shift
case "$verb" in
start) start "$@" ;;
stop) stop "$@" ;;
*) usage ;;
esac
