#!/usr/bin/env bash
# scripts/health-screenshot.sh — the health page in a real headless browser.
#
# Runs the news demo with -http, loads its health page in headless Chromium
# (Debian's chromium package, installed with apt-get when missing), checks
# what the browser rendered (the DOM after parsing) and writes a screenshot,
# by default to docs/health.png (the one the README shows).
#
#   bash scripts/health-screenshot.sh [out.png]      # or: make screenshot
#
# Not part of `make test`: the page is tested there with httptest
# (runtime/health, example/cmd/newsdemo); this is the browser check, run when
# the page changes. It uses the servers when they answer, else the demo's
# embedded default. Needs root (or sudo) for apt-get when Chromium is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${1:-docs/health.png}"
PORT="${HEALTH_PORT:-18080}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
log() { echo "screenshot: $*" >&2; }
die() {
	echo "screenshot: ERROR: $*" >&2
	exit 1
}

if [ ! -x "$CHROMIUM" ]; then
	SUDO=()
	[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO=(sudo -n)
	command -v apt-get >/dev/null 2>&1 || die "$CHROMIUM missing and no apt-get to install it"
	log "installing chromium (apt-get)"
	"${SUDO[@]}" apt-get update -qq </dev/null >/dev/null || die "apt-get update failed"
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium </dev/null >/dev/null ||
		die "apt-get install chromium failed"
fi

work="$(mktemp -d)"
demo_pid=""
cleanup() {
	[ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/newsdemo" ./example/cmd/newsdemo
log "running the demo with -http 127.0.0.1:$PORT"
"$work/newsdemo" -requests "${REQUESTS:-20000}" -http "127.0.0.1:$PORT" >"$work/demo.out" 2>"$work/demo.err" </dev/null &
demo_pid=$!
for _ in $(seq 1 600); do
	grep -q "health page:" "$work/demo.out" && break
	kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.out" "$work/demo.err" >&2; die "the demo exited"; }
	sleep 0.2
done
grep -q "health page:" "$work/demo.out" || die "the demo never served its health page"
cat "$work/demo.out" >&2

url="http://127.0.0.1:$PORT/"
browser=("$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
	--disable-background-networking --disable-component-update --disable-sync --hide-scrollbars)

# What the browser rendered: the page's own title, a section per cache and
# the example's keyspaces, most misses first.
timeout 60 "${browser[@]}" --user-data-dir="$(mktemp -d -p "$work")" --dump-dom "$url" >"$work/dom.html" 2>/dev/null ||
	die "chromium could not load $url"
for want in "cachegen — cache health" "namespace" "breaker" "pending invalidations" "articles.Get" "users.Profile" "inconsistent / verified"; do
	grep -qF "$want" "$work/dom.html" || die "the rendered page lacks \"$want\""
done
log "rendered page checked ($(wc -c <"$work/dom.html") bytes of DOM)"

mkdir -p "$(dirname "$OUT")"
timeout 60 "${browser[@]}" --user-data-dir="$(mktemp -d -p "$work")" --window-size="${WINDOW:-1280,760}" \
	--screenshot="$OUT" "$url" >/dev/null 2>&1 || die "chromium could not take the screenshot"
[ -s "$OUT" ] || die "empty screenshot"
log "wrote $OUT"
