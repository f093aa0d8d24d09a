#!/usr/bin/env bash
# DHCPv4 benchmark: Anvil against Kea (kea-dhcp4), same subnet, same client (perfdhcp), same run.
# perfdhcp plays a relay agent (giaddr = its own address, replies to giaddr:67) simulating many clients
# doing DISCOVER-OFFER-REQUEST-ACK at a fixed offered rate. Everything runs inside two network
# namespaces this script creates and removes: the server's (veth 10.78.0.1/16) and the client's
# (veth 10.78.0.2/16, the relay address); no interface appears in the host namespace.
#   deploy/bench/dhcp.sh                       release build of anvil (built if missing)
#   RATE=4000 DURATION=20 ANVIL_BINARY=... deploy/bench/dhcp.sh
#   RATE=max                                   no fixed rate: perfdhcp starts exchanges as fast as it can (drops then
#                                              measure the overload; exch/s is what each server completed)
#   CLIENTS="10000 100000"                     simulated clients per case (perfdhcp -R)
#   KEA_THREADS=2                              Kea with multi-threading (default: off, Kea 2.2's default)
#   KEEP=1                                     keep the work directory (logs, perfdhcp output) and say where
# Each server is started fresh (empty lease store) for each case. Prints per case and server: completed
# 4-way exchanges per second (received ACKs / duration), drops of both exchanges, perfdhcp's average
# delays; then Anvil / Kea for exchanges per second (above 1 means Anvil completes more).
# Leases: Anvil commits each to SQLite (group commit, synced) before its ACK; Kea appends to a memfile
# CSV without syncing.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (network namespaces, port 67)" >&2; exit 1; }

rate=${RATE:-2000}
duration=${DURATION:-15}
[[ "$rate" =~ ^([1-9][0-9]*|max)$ ]] || { echo "bench: RATE must be a positive integer or max" >&2; exit 2; }
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || { echo "bench: DURATION must be a positive number of seconds" >&2; exit 2; }
read -r -a client_counts <<<"${CLIENTS:-10000 100000}"
[ "${#client_counts[@]}" -gt 0 ] || { echo "bench: CLIENTS is empty" >&2; exit 2; }
for clients in "${client_counts[@]}"; do
    [[ "$clients" =~ ^[1-9][0-9]*$ ]] || { echo "bench: CLIENTS must be positive integers" >&2; exit 2; }
done
kea_threads=${KEA_THREADS:-0}
[[ "$kea_threads" =~ ^[0-9]+$ ]] || { echo "bench: KEA_THREADS must be a number" >&2; exit 2; }

packages=(kea-admin kea-dhcp4-server iproute2 bc)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    # The Kea package would start a system kea-dhcp4 service; a policy-rc.d that says no keeps it from
    # starting (only one this script put there is removed again).
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    status=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || status=$?
    if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
    [ "$status" -eq 0 ] || { echo "bench: installing ${missing[*]} failed" >&2; exit 1; }
    # Belt and braces on a systemd machine: the service this install added does not stay running.
    if [ -d /run/systemd/system ] && [[ " ${missing[*]} " == *" kea-dhcp4-server "* ]]; then
        systemctl stop kea-dhcp4-server.service 2>/dev/null || true
    fi
fi
anvil=${ANVIL_BINARY:-}
if [ -z "$anvil" ]; then
    # A build path of its own: a debug build in .build may be running at the same time. Quiet unless it fails.
    build_log=$(mktemp /tmp/anvil-bench-dhcp-build.XXXXXX)
    swift build -c release --build-path "$PWD/.build-release" --product anvil >"$build_log" 2>&1 \
        || { cat "$build_log" >&2; rm -f "$build_log"; exit 1; }
    rm -f "$build_log"
    anvil="$(swift build -c release --build-path "$PWD/.build-release" --show-bin-path)/anvil"
fi
[ -x "$anvil" ] || { echo "bench: no anvil binary at $anvil" >&2; exit 1; }

server_address=10.78.0.1
relay_address=10.78.0.2
work=$(mktemp -d /tmp/anvil-bench-dhcp.XXXXXX)
ns_server="anvil-bench-dhcp-s-$$"
ns_client="anvil-bench-dhcp-c-$$"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    ip netns delete "$ns_client" 2>/dev/null || true
    ip netns delete "$ns_server" 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "bench: work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
ip netns add "$ns_server"
ip netns add "$ns_client"
in_server() { ip netns exec "$ns_server" "$@"; }
for ns in "$ns_server" "$ns_client"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
    ip -n "$ns" link set lo up
done
# Made inside the server namespace with its peer moved straight into the client's one.
in_server ip link add veth-s type veth peer name veth-c netns "$ns_client"
ip -n "$ns_server" addr add "$server_address/16" dev veth-s
ip -n "$ns_client" addr add "$relay_address/16" dev veth-c
ip -n "$ns_server" link set veth-s up
ip -n "$ns_client" link set veth-c up

# One exchange from a MAC outside the simulated clients' range (perfdhcp varies the low bytes of 00:0c:01:02:03:04):
# the server is ready once it completes. Every run gets the same single extra lease.
probe() {
    # (-n 1 stops before the ACK can arrive; one exchange in a 1 s period, plus 0.3 s for the replies, does not.)
    timeout 5 ip netns exec "$ns_client" perfdhcp -4 -l "$relay_address" -r 1 -p 1 -W 300000 -d 0.5 -b mac=02:00:5e:10:00:01 \
        "$server_address" >"$work/probe.out" 2>&1
}

start_server() { # server
    rm -rf "$work/server"
    mkdir -p "$work/server"
    case "$1" in
    anvil)
        local data="$work/server/data"
        mkdir -p "$data"
        # Not through in_server: $! must be the server (ip netns exec execs it), not a subshell.
        ip netns exec "$ns_server" "$anvil" serve --data-dir "$data" --content-dir "$PWD" --admin-listen 127.0.0.1:8443 --admin-tls off \
            --boot-listen 0.0.0.0:8080 --tftp-listen off --dhcp-interface veth-s --log-level warning >"$data/serve.log" 2>&1 &
        server_pid=$!
        local ready=""
        for _ in $(seq 1 300); do
            if [ -s "$data/listeners.json" ] && grep -q '"dhcp"' "$data/listeners.json" && grep -q '"admin"' "$data/listeners.json" \
                && [ -s "$data/admin.token" ]; then
                ready=1
                break
            fi
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        [ -n "$ready" ] || { echo "bench: anvil did not start" >&2; cat "$data/serve.log" >&2; exit 1; }
        in_server timeout 20 "$anvil" subnets create --endpoint http://127.0.0.1:8443 --token-file "$data/admin.token" \
            --set name=bench --set network=10.78.0.0/16 --set rangeStart=10.78.1.0 --set rangeEnd=10.78.255.254 \
            --set leaseSeconds=3600 --set "relayAddresses=[\"$relay_address\"]" >"$work/server/subnet.out" 2>&1 \
            || { echo "bench: creating the subnet failed" >&2; cat "$work/server/subnet.out" "$data/serve.log" >&2; exit 1; }
        sleep 2  # Anvil reloads its subnets on the inventory event
        ;;
    kea)
        cat >"$work/server/kea-dhcp4.conf" <<EOF
{
  "Dhcp4": {
    "interfaces-config": { "interfaces": [ "veth-s" ], "dhcp-socket-type": "udp" },
    "lease-database": { "type": "memfile", "persist": true, "name": "$work/server/leases4.csv", "lfc-interval": 0 },
    "valid-lifetime": 3600,
    "subnet4": [ { "id": 1, "subnet": "10.78.0.0/16", "pools": [ { "pool": "10.78.1.0 - 10.78.255.254" } ] } ],
    "multi-threading": { "enable-multi-threading": $([ "$kea_threads" -gt 0 ] && echo true || echo false),
                         "thread-pool-size": $([ "$kea_threads" -gt 0 ] && echo "$kea_threads" || echo 1), "packet-queue-size": 64 },
    "loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "$work/server/kea.log" } ], "severity": "WARN" } ]
  }
}
EOF
        ip netns exec "$ns_server" env KEA_PIDFILE_DIR="$work/server" KEA_LOCKFILE_DIR="$work/server" \
            /usr/sbin/kea-dhcp4 -c "$work/server/kea-dhcp4.conf" >"$work/server/kea.out" 2>&1 &
        server_pid=$!
        ;;
    esac
    for _ in $(seq 1 15); do
        kill -0 "$server_pid" 2>/dev/null || break
        probe && return 0
        sleep 0.2
    done
    echo "bench: $1 did not answer a DHCP exchange" >&2
    cat "$work/probe.out" "$work"/server/*.log "$work"/server/*.out "$work"/server/data/serve.log >&2 2>/dev/null || true
    exit 1
}

stop_server() { # server
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -KILL "$server_pid" 2>/dev/null; then echo "bench: $1 did not exit within 10 s of SIGTERM; killed it" >&2; fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# perfdhcp's final report → "received_acks do_drop% ra_drop% do_avg_ms ra_avg_ms ra_max_ms"
summarize() {
    awk '
        /Statistics for: DISCOVER-OFFER/ { s = "do" }
        /Statistics for: REQUEST-ACK/ { s = "ra" }
        s != "" && /^received packets:/ { received[s] = $3 }
        s != "" && /^drops ratio:/ { drops[s] = $3 }
        s != "" && /^avg delay: [0-9.]+ ms/ { avg[s] = $3 }
        s != "" && /^max delay: [0-9.]+ ms/ { max[s] = $3 }
        function f(v, digits) { return v ~ /^[0-9]+(\.[0-9]+)?$/ ? sprintf("%." digits "f", v) : "n/a" }
        END {
            printf "%d %s %s %s %s %s\n", received["ra"] + 0, f(drops["do"], 2), f(drops["ra"], 2), f(avg["do"], 3), f(avg["ra"], 3), f(max["ra"], 1)
        }' "$1"
}

run_case() { # server clients → result["server|clients"] (not in a subshell: the trap must see server_pid)
    local out="$work/$1-$2.perfdhcp" status=0
    start_server "$1"
    # -W: after the test period, wait 1 s for replies still on their way before counting drops.
    local rate_option=(-r "$rate")
    if [ "$rate" = max ]; then rate_option=(); fi  # without -r perfdhcp starts exchanges as fast as it can
    timeout $((duration + 30)) ip netns exec "$ns_client" perfdhcp -4 -l "$relay_address" "${rate_option[@]}" -R "$2" -p "$duration" \
        -W 1000000 "$server_address" >"$out" 2>&1 || status=$?
    # 3: some exchanges did not complete, which the table shows; anything else is a failed run.
    if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
        echo "bench: perfdhcp against $1 with $2 clients exited $status" >&2
        cat "$out" >&2
        exit 1
    fi
    stop_server "$1"
    for log in "$work"/server/*.log "$work"/server/data/serve.log; do
        # Warnings and errors only (serve.log also holds the first admin token; Kea states its threading at WARN).
        local lines
        lines=$(grep -E 'warning|error|critical|WARN|ERROR|FATAL' "$log" 2>/dev/null | grep -v DHCP4_MULTI_THREADING_INFO | tail -n 20 || true)
        if [ -n "$lines" ]; then printf 'bench: %s, %s clients, %s:\n%s\n' "$1" "$2" "$(basename "$log")" "$lines" >&2; fi
    done
    if [ -n "${KEEP:-}" ]; then cp -r "$work/server" "$work/$1-$2.server"; fi
    result["$1|$2"]=$(summarize "$out")
}

servers=(anvil kea)
declare -A result
for clients in "${client_counts[@]}"; do
    for server in "${servers[@]}"; do run_case "$server" "$clients"; done
done

echo "DHCPv4 benchmark: perfdhcp as relay agent (giaddr $relay_address), veth between two namespaces,"
echo "offered $([ "$rate" = max ] && echo "as fast as perfdhcp can send" || echo "$rate 4-way exchanges/s") for ${duration} s, fresh server per case; Kea multi-threading: $([ "$kea_threads" -gt 0 ] && echo "$kea_threads threads" || echo off)"
echo "(exch/s = ACKs received / duration; drops and delays as perfdhcp reports them; DO = DISCOVER-OFFER, RA = REQUEST-ACK)"
printf '%-16s %-10s %10s %10s %10s %11s %11s %11s\n' clients server exch/s "DO drop" "RA drop" "DO avg ms" "RA avg ms" "RA max ms"
for clients in "${client_counts[@]}"; do
    for server in "${servers[@]}"; do
        read -r acks do_drop ra_drop do_avg ra_avg ra_max <<<"${result["$server|$clients"]}"
        printf '%-16s %-10s %10.1f %9s%% %9s%% %11s %11s %11s\n' "$clients" "$server" "$(echo "scale=3; $acks / $duration" | bc)" \
            "$do_drop" "$ra_drop" "$do_avg" "$ra_avg" "$ra_max"
    done
    anvil_acks=$(cut -d' ' -f1 <<<"${result["anvil|$clients"]}")
    kea_acks=$(cut -d' ' -f1 <<<"${result["kea|$clients"]}")
    if [ "$kea_acks" -gt 0 ]; then ratio=$(printf '%.2f' "$(echo "$anvil_acks / $kea_acks" | bc -l)"); else ratio="n/a"; fi
    printf '%-16s %-10s %10s\n' "$clients" "anvil/kea" "$ratio"
done
