#!/usr/bin/env bash
# scripts/services.sh — make sure the local Redis and PostgreSQL that the tests
# and the demo use are answering on loopback.
#
#   Redis:      $REDIS_ADDR (default 127.0.0.1:6379)
#   PostgreSQL: 127.0.0.1:5432, user postgres without password, database test
#               (postgres://postgres@127.0.0.1:5432/test)
#
# Idempotent and quick when both already answer (no package manager, no
# restart). Otherwise it installs the missing Debian packages (apt-get, non-
# interactive), starts the servers bound to loopback only, and waits (bounded)
# until they answer. Meant to run as root (or with sudo available) on Debian.
set -euo pipefail

REDIS_ADDR="${REDIS_ADDR:-127.0.0.1:6379}"
REDIS_HOST="${REDIS_ADDR%:*}"
REDIS_PORT="${REDIS_ADDR##*:}"
PG_HOST=127.0.0.1
PG_PORT=5432
PG_DB=test
WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-30}"

export DEBIAN_FRONTEND=noninteractive

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo -n)
	fi
fi

log() { echo "services: $*" >&2; }
die() {
	echo "services: ERROR: $*" >&2
	exit 1
}

is_loopback() {
	case "$1" in
	127.* | localhost | ::1 | "[::1]") return 0 ;;
	*) return 1 ;;
	esac
}

APT_UPDATED=0
apt_install() {
	command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
	if [ "$APT_UPDATED" -eq 0 ]; then
		log "apt-get update"
		"${SUDO[@]}" apt-get update -qq </dev/null >/dev/null || die "apt-get update failed"
		APT_UPDATED=1
	fi
	log "apt-get install -y $*"
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"$@" </dev/null >/dev/null || die "apt-get install $* failed"
}

# ---------------------------------------------------------------- Redis ----

# redis_ping: true when a Redis answers PING at $REDIS_HOST:$REDIS_PORT.
# Uses bash's /dev/tcp so it needs no redis-cli.
redis_ping() {
	local host="$REDIS_HOST"
	[ "$host" = localhost ] && host=127.0.0.1
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "PING\r\n" >&3
		IFS= read -r -t 2 line <&3 || exit 1
		case "$line" in "+PONG"*|"-NOAUTH"*) exit 0 ;; *) exit 1 ;; esac
	' "$host" "$REDIS_PORT" 2>/dev/null
}

ensure_redis() {
	if redis_ping; then
		echo "redis:      ok, answering on $REDIS_ADDR (already running)"
		return
	fi
	is_loopback "$REDIS_HOST" || die "Redis at $REDIS_ADDR does not answer, and it is not a loopback address this script could start"

	if ! command -v redis-server >/dev/null 2>&1; then
		apt_install redis-server redis-tools
		# The package's own service may have come up on the default port.
		if redis_ping; then
			echo "redis:      ok, answering on $REDIS_ADDR (installed, started by the package)"
			return
		fi
	fi

	local logfile="${TMPDIR:-/tmp}/cachegen-redis-$REDIS_PORT.log"
	log "starting redis-server on 127.0.0.1:$REDIS_PORT (log: $logfile)"
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
		--save "" --appendonly no --dir "${TMPDIR:-/tmp}" --logfile "$logfile" \
		</dev/null >/dev/null 2>&1 || true

	local deadline=$((SECONDS + WAIT_SECONDS))
	until redis_ping; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			tail -n 30 "$logfile" >&2 2>/dev/null || true
			die "Redis did not answer on $REDIS_ADDR within ${WAIT_SECONDS}s"
		fi
		sleep 0.2
	done
	echo "redis:      ok, answering on $REDIS_ADDR (started)"
}

# ----------------------------------------------------------- PostgreSQL ----

pg_psql() { # pg_psql DB SQL — as user postgres over TCP, no password
	PGCONNECT_TIMEOUT=3 psql -w -X -q -A -t -h "$PG_HOST" -p "$PG_PORT" -U postgres -d "$1" -c "$2" </dev/null 2>/dev/null
}

pg_ok() { # the URL the tests use works
	command -v psql >/dev/null 2>&1 && [ "$(pg_psql "$PG_DB" 'select 1')" = 1 ]
}

pg_answers() { # something accepts connections on the port
	if command -v pg_isready >/dev/null 2>&1; then
		pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 </dev/null >/dev/null 2>&1
	else
		timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$PG_HOST" "$PG_PORT" 2>/dev/null
	fi
}

pg_version() { # newest installed major version with a server binary
	local v best=""
	for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -V); do
		[ -x "/usr/lib/postgresql/$v/bin/postgres" ] && best="$v"
	done
	echo "$best"
}

# pg_configure V: trust auth for local and loopback connections, in a block of
# our own at the top of pg_hba.conf (added once), and loopback-only listening
# unless conf.d already sets listen_addresses. Prints "restart" when a setting
# that needs a restart was written.
pg_configure() {
	local conf="/etc/postgresql/$1/main"
	local hba="$conf/pg_hba.conf"
	[ -f "$hba" ] || die "$hba not found"
	if ! grep -q '^# cachegen scripts/services.sh' "$hba"; then
		log "adding trust auth for local and loopback connections to $hba"
		local tmp
		tmp="$(mktemp)"
		{
			echo '# cachegen scripts/services.sh: tests and demo connect as postgres without password, loopback only'
			echo 'local   all   all                   trust'
			echo 'host    all   all   127.0.0.1/32    trust'
			echo 'host    all   all   ::1/128         trust'
			cat "$hba"
		} >"$tmp"
		"${SUDO[@]}" cp "$tmp" "$hba"
		rm -f "$tmp"
		"${SUDO[@]}" chown postgres:postgres "$hba" 2>/dev/null || true
		"${SUDO[@]}" chmod 640 "$hba" 2>/dev/null || true
	fi
	if [ -d "$conf/conf.d" ] && ! grep -rqs '^[[:space:]]*listen_addresses' "$conf/conf.d"; then
		log "listening on 127.0.0.1 only ($conf/conf.d/50-cachegen-loopback.conf)"
		echo "listen_addresses = '127.0.0.1'" | "${SUDO[@]}" tee "$conf/conf.d/50-cachegen-loopback.conf" >/dev/null
		"${SUDO[@]}" chown postgres:postgres "$conf/conf.d/50-cachegen-loopback.conf" 2>/dev/null || true
		echo restart
	fi
}

pg_ctl() { # pg_ctl V ACTION
	"${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$1" main "$2" </dev/null >/dev/null 2>&1
}

pg_wait() { # pg_wait V: until the port accepts connections
	local deadline=$((SECONDS + WAIT_SECONDS))
	until pg_answers; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			tail -n 30 "/var/log/postgresql/postgresql-$1-main.log" >&2 2>/dev/null || true
			die "PostgreSQL did not answer on $PG_HOST:$PG_PORT within ${WAIT_SECONDS}s"
		fi
		sleep 0.2
	done
}

pg_can_login() { # as postgres, bounded retries (a reload applies a moment later)
	local deadline=$((SECONDS + ${1:-0}))
	until [ "$(pg_psql postgres 'select 1')" = 1 ]; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

ensure_postgres() {
	if pg_ok; then
		echo "postgresql: ok, answering on $PG_HOST:$PG_PORT, database $PG_DB (already running)"
		return
	fi

	local v how="started"
	v="$(pg_version)"
	if [ -z "$v" ]; then
		apt_install postgresql
		v="$(pg_version)"
		[ -n "$v" ] || die "postgresql installed, but no server binary under /usr/lib/postgresql"
		how="installed and started"
	elif ! command -v psql >/dev/null 2>&1; then
		apt_install postgresql-client
	fi

	if [ ! -d "/etc/postgresql/$v/main" ]; then
		log "creating cluster $v/main"
		"${SUDO[@]}" pg_createcluster "$v" main -p "$PG_PORT" </dev/null >/dev/null
		pg_configure "$v" >/dev/null
	fi

	if pg_answers; then
		how="already running"
	else
		log "starting PostgreSQL cluster $v/main"
		pg_ctl "$v" start || true
	fi
	pg_wait "$v"

	# Fix the configuration only when logging in as postgres does not work.
	if ! pg_can_login 2; then
		if [ "$(pg_configure "$v")" = restart ]; then
			pg_ctl "$v" restart || true
		else
			pg_ctl "$v" reload || true
		fi
		pg_wait "$v"
		pg_can_login 10 || die "cannot connect as postgres to $PG_HOST:$PG_PORT (check pg_hba.conf of cluster $v/main)"
		how="$how, reconfigured"
	fi

	if [ "$(pg_psql postgres "select 1 from pg_database where datname = '$PG_DB'")" != 1 ]; then
		log "creating database $PG_DB"
		pg_psql postgres "create database $PG_DB" >/dev/null || die "create database $PG_DB failed"
		how="$how, created database $PG_DB"
	fi
	pg_ok || die "postgres://postgres@$PG_HOST:$PG_PORT/$PG_DB does not work"
	echo "postgresql: ok, answering on $PG_HOST:$PG_PORT, database $PG_DB ($how)"
}

ensure_redis
ensure_postgres
