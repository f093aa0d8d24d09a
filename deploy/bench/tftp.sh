#!/usr/bin/env bash
# TFTP benchmark: Anvil against tftpd-hpa and dnsmasq, same files, same client (atftp), same run.
# Everything runs inside a network namespace this script creates (loopback only) and removes.
#   deploy/bench/tftp.sh                 release build of anvil (built if missing), 3 runs per case
#   REPEAT=5 ANVIL_BINARY=... deploy/bench/tftp.sh
# Prints one row per case: the median time of each server and how many times faster Anvil is
# (peer time / Anvil time; above 1 means Anvil is faster).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (network namespace, port 69)" >&2; exit 1; }

packages=(atftp tftpd-hpa dnsmasq-base iproute2 bc)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
anvil=${ANVIL_BINARY:-}
if [ -z "$anvil" ]; then
    swift build -c release --product anvil >/dev/null
    anvil="$(swift build -c release --show-bin-path)/anvil"
fi
repeat=${REPEAT:-3}

work=$(mktemp -d /tmp/anvil-bench-tftp.XXXXXX)
ns="anvil-bench-$$"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    ip netns delete "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }

mkdir -p "$work/root"
head -c $((1 << 20)) /dev/urandom >"$work/root/1m.bin"
head -c $((40 << 20)) /dev/urandom >"$work/root/40m.bin"

start_server() {
    case "$1" in
    anvil)
        rm -rf "$work/data"
        in_ns "$anvil" serve --data-dir "$work/data" --content-dir . --admin-listen 127.0.0.1:0 --boot-listen 127.0.0.1:0 \
            --tftp-listen 127.0.0.1:69 --boot-files-dir "$work/root" --log-level warning >"$work/anvil.log" 2>&1 &
        ;;
    tftpd-hpa)
        in_ns /usr/sbin/in.tftpd --foreground --listen --address 127.0.0.1:69 --secure "$work/root" >"$work/tftpd.log" 2>&1 &
        ;;
    dnsmasq)
        in_ns /usr/sbin/dnsmasq --keep-in-foreground --port=0 --enable-tftp --tftp-root="$work/root" --listen-address=127.0.0.1 \
            --bind-interfaces --tftp-max=1000 --conf-file=/dev/null --pid-file= --user=root --group=root >"$work/dnsmasq.log" 2>&1 &
        ;;
    esac
    server_pid=$!
    for _ in $(seq 1 100); do
        in_ns atftp --get -r 1m.bin -l /dev/null 127.0.0.1 69 >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench: $1 did not answer" >&2
    cat "$work"/*.log >&2
    exit 1
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

now() { date +%s.%N; }

# One fetch; fails the benchmark if the bytes differ.
fetch() { # file blksize windowsize output
    local options=(--option "blksize $2")
    [ "$3" -gt 1 ] && options+=(--option "windowsize $3")
    in_ns atftp --get -r "$1" -l "$4" "${options[@]}" 127.0.0.1 69 >/dev/null 2>&1
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

single() { # file blksize windowsize → median seconds
    local times=()
    for _ in $(seq 1 "$repeat"); do
        local start end
        start=$(now)
        fetch "$1" "$2" "$3" "$work/out"
        end=$(now)
        cmp -s "$work/out" "$work/root/$1" || { echo "bench: $1 differs" >&2; exit 1; }
        times+=("$(echo "$end - $start" | bc)")
    done
    printf '%s\n' "${times[@]}" | median
}

concurrent() { # clients → median seconds for all of them to fetch 1m.bin (blksize 1468)
    local times=()
    for _ in $(seq 1 "$repeat"); do
        local start end pids=()
        start=$(now)
        for index in $(seq 1 "$1"); do
            fetch 1m.bin 1468 1 "$work/c$index" &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do wait "$pid"; done
        end=$(now)
        for index in $(seq 1 "$1"); do cmp -s "$work/c$index" "$work/root/1m.bin" || { echo "bench: client $index differs" >&2; exit 1; }; done
        rm -f "$work"/c*
        times+=("$(echo "$end - $start" | bc)")
    done
    printf '%s\n' "${times[@]}" | median
}

cases=("1m.bin 512 1" "1m.bin 1468 1" "1m.bin 512 16" "1m.bin 1468 16" "40m.bin 512 1" "40m.bin 1468 1" "40m.bin 512 16" "40m.bin 1468 16")
servers=(anvil tftpd-hpa dnsmasq)
declare -A result
for server in "${servers[@]}"; do
    start_server "$server"
    for case in "${cases[@]}"; do
        read -r file blksize window <<<"$case"
        result["$server|$case"]=$(single "$file" "$blksize" "$window")
    done
    for clients in 50 200; do result["$server|$clients clients"]=$(concurrent "$clients"); done
    stop_server
done

echo "TFTP benchmark: atftp client, loopback in a namespace, median of $repeat runs; MB/s for one transfer, seconds for many"
echo "(windowsize rows: each server runs with the window it negotiates; a server without RFC 7440 falls back to 1)"
printf '%-28s %12s %12s %12s %14s %14s\n' case anvil tftpd-hpa dnsmasq "x tftpd-hpa" "x dnsmasq"
for case in "${cases[@]}"; do
    read -r file blksize window <<<"$case"
    bytes=$(stat -c %s "$work/root/$file")
    row=()
    for server in "${servers[@]}"; do row+=("$(echo "scale=1; $bytes / 1048576 / ${result["$server|$case"]}" | bc)"); done
    a=${result["anvil|$case"]}
    printf '%-28s %10s/s %10s/s %10s/s %14.2f %14.2f\n' "$file blksize $blksize win $window" "${row[0]}M" "${row[1]}M" "${row[2]}M" \
        "$(echo "${result["tftpd-hpa|$case"]} / $a" | bc -l)" "$(echo "${result["dnsmasq|$case"]} / $a" | bc -l)"
done
for clients in 50 200; do
    key="$clients clients"
    a=${result["anvil|$key"]}
    printf '%-28s %11.2fs %11.2fs %11.2fs %14.2f %14.2f\n' "$clients clients x 1m.bin 1468" "$a" "${result["tftpd-hpa|$key"]}" "${result["dnsmasq|$key"]}" \
        "$(echo "${result["tftpd-hpa|$key"]} / $a" | bc -l)" "$(echo "${result["dnsmasq|$key"]} / $a" | bc -l)"
done
