#!/usr/bin/env bash
# HTTP boot benchmark: Anvil's boot plane against nginx serving the same files, same clients, same run.
# Everything runs inside a network namespace this script creates (loopback only) and removes.
#   deploy/bench/http.sh                      release build of anvil (built if missing)
#   PARALLEL=32 SIZE_MIB=100 SECONDS_WRK=10 ANVIL_BINARY=... deploy/bench/http.sh
# Prints: aggregate throughput of PARALLEL concurrent downloads of a SIZE_MIB file (curl), and
# requests per second for the iPXE script (wrk, 64 connections): Anvil renders it per request,
# nginx serves the same bytes as a static file (its best case). Ratios are Anvil / nginx.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (network namespace)" >&2; exit 1; }

packages=(nginx wrk curl iproute2 bc)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The distribution's nginx service is not what is measured: keep it from holding port 80.
systemctl disable --now nginx >/dev/null 2>&1 || true
anvil=${ANVIL_BINARY:-}
if [ -z "$anvil" ]; then
    swift build -c release --product anvil >/dev/null
    anvil="$(swift build -c release --show-bin-path)/anvil"
fi
parallel=${PARALLEL:-32}
size=${SIZE_MIB:-100}
duration=${SECONDS_WRK:-10}

work=$(mktemp -d /tmp/anvil-bench-http.XXXXXX)
ns="anvil-bench-http-$$"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }

mkdir -p "$work/root/files" "$work/root/boot"
head -c $((size << 20)) /dev/urandom >"$work/root/files/big.bin"
mac="52:54:00:be:0c:01"

# Started with `ip netns exec` itself (which execs), not the in_ns function: $! is then the server's
# own PID, which cleanup stops, rather than a subshell's.
ip netns exec "$ns" "$anvil" serve --data-dir "$work/data" --content-dir . --admin-listen 127.0.0.1:0 --boot-listen 127.0.0.1:8080 \
    --tftp-listen off --boot-files-dir "$work/root/files" --log-level warning >"$work/anvil.log" 2>&1 &
pids+=($!)
cat >"$work/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    server {
        listen 127.0.0.1:8081;
        root $work/root;
    }
}
CONF
ip netns exec "$ns" nginx -c "$work/nginx.conf" &
pids+=($!)
for _ in $(seq 1 200); do
    in_ns curl -sf http://127.0.0.1:8080/healthz >/dev/null 2>&1 && in_ns curl -sf http://127.0.0.1:8081/files/big.bin -o /dev/null -r 0-0 && break
    sleep 0.1
done
# nginx gets the very bytes Anvil renders for this (unknown) machine.
in_ns curl -sf "http://127.0.0.1:8080/boot/$mac.ipxe" -o "$work/root/boot/$mac.ipxe"

download() { # base URL → MiB/s over PARALLEL concurrent downloads
    local start end
    start=$(date +%s.%N)
    for i in $(seq 1 "$parallel"); do in_ns curl -sf "$1/files/big.bin" -o /dev/null & done
    wait $(jobs -p | grep -v -F -x -f <(printf '%s\n' "${pids[@]}")) 2>/dev/null || true
    end=$(date +%s.%N)
    echo "scale=1; $parallel * $size / ($end - $start)" | bc
}
requests() { # URL [wrk script] → requests per second (wrk, 64 connections)
    in_ns wrk -t2 -c64 -d"${duration}s" ${2:+-s "$2"} "$1" | awk '/Requests\/sec/ { print int($2) }'
}
# Every request a MAC never asked before (2^24 per wrk thread), so every script is rendered afresh:
# a boot storm of different machines rather than one machine asking again.
cat >"$work/distinct-macs.lua" <<'LUA'
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init() n = 0 end  -- `id` is set in this thread by setup
function request()
    n = n + 1
    return wrk.format("GET", string.format("/boot/52-54-%02x-%02x-%02x-%02x.ipxe", id, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256))
end
LUA

anvil_mib=$(download http://127.0.0.1:8080)
nginx_mib=$(download http://127.0.0.1:8081)
anvil_rps=$(requests "http://127.0.0.1:8080/boot/$mac.ipxe")
anvil_distinct_rps=$(requests "http://127.0.0.1:8080/" "$work/distinct-macs.lua")
nginx_rps=$(requests "http://127.0.0.1:8081/boot/$mac.ipxe")
printf '%-52s %12s %12s %8s\n' "measurement" "anvil" "nginx" "ratio"
printf '%-52s %10s/s %10s/s %8s\n' "$parallel x ${size} MiB downloads (MiB)" "$anvil_mib" "$nginx_mib" "$(echo "scale=2; $anvil_mib / $nginx_mib" | bc)"
printf '%-52s %12s %12s %8s\n' "iPXE script, 64 connections (req/s; nginx: static)" "$anvil_rps" "$nginx_rps" "$(echo "scale=2; $anvil_rps / $nginx_rps" | bc)"
printf '%-52s %12s %12s %8s\n' "  the same, every request a new MAC (rendered)" "$anvil_distinct_rps" "$nginx_rps" "$(echo "scale=2; $anvil_distinct_rps / $nginx_rps" | bc)"
