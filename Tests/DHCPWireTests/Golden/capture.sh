#!/usr/bin/env bash
# Captures real DHCP client packets as golden files for DHCPWireTests.
#
# Golden files are rewritten only when you run this script; the tests never capture anything.
# Each capture writes <name>-discover.hex and <name>-request.hex next to this script: the UDP payload
# (the BOOTP/DHCP message) as lowercase hex, 32 bytes per line. Afterwards regenerate the readable dumps:
#     cd /work/main && ANVIL_UPDATE_GOLDEN=1 swift test --filter DHCPWireTests
#
# Usage (as root): capture.sh [capture ...]   captures: dhclient udhcpc dhcpcd ipxe-bios ovmf-pxe ovmf-http
#                                            (default: all of them)
# Needs: iproute2, python3, util-linux (unshare, mount) and the Debian packages
#        isc-dhcp-client udhcpc dhcpcd-base (or dhcpcd5) qemu-system-x86 ovmf ipxe-qemu seabios
#
# How: three network namespaces of our own, linked only to each other (every veth is created from inside a lab
# namespace, so nothing appears in the host's namespace):
#     srv  (10.98.7.1/24 on srv0, a Python listener bound to 0.0.0.0:67)
#      |   veth
#     rack (bridge br0; one tap for the VM; port to cli)
#      |   veth
#     cli  (eth0 for the Linux DHCP clients; its MAC is set per capture)
# The listener records the first DISCOVER from the capture's MAC, answers with a small fake OFFER (broadcast on
# srv0 only, with a boot file and the client's vendor class family so firmware accepts it), records the REQUEST
# and exits. Nothing is ever sent outside these namespaces, and no ACK is sent, so no client configures itself.
#
# Safety: DHCP clients' default hook scripts rewrite the host's /etc/resolv.conf even inside a network
# namespace (the mount namespace is shared). So every client gets a no-op hook script, runs in the foreground
# under `timeout` in a private mount and UTS namespace where /etc/resolv.conf is bind-mounted over by a dummy and
# state directories are tmpfs, and the script checks /etc/resolv.conf is byte-identical at the end.
# Cleanup (on any exit): processes we started, by PID; the namespaces; the temporary directory.
set -euo pipefail

GOLDEN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WAIT_SECONDS=90          # for the first DISCOVER
REQUEST_WAIT_SECONDS=45  # from the DISCOVER to the REQUEST
NS_SRV="dhcpgold-srv-$$"
NS_RACK="dhcpgold-rack-$$"
NS_CLI="dhcpgold-cli-$$"
WORK="$(mktemp -d /tmp/dhcp-golden.XXXXXX)"
STARTED_PIDS=()

[[ $(id -u) == 0 ]] || { echo "capture.sh: needs root (network namespaces)" >&2; exit 1; }

RESOLV_BEFORE="$(sha256sum /etc/resolv.conf | cut -d' ' -f1)"

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        # Bounded wait: a process that ignores SIGTERM gets SIGKILL after ~5 s.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    local ns
    for ns in "$NS_CLI" "$NS_RACK" "$NS_SRV"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
    if [[ "$(sha256sum /etc/resolv.conf | cut -d' ' -f1)" != "$RESOLV_BEFORE" ]]; then
        echo "capture.sh: WARNING: /etc/resolv.conf changed during the capture" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops one process we started and forgets it.
stop_pid() {
    local pid=$1
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

forget_pid() {
    local kept=() p
    for p in "${STARTED_PIDS[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
    STARTED_PIDS=("${kept[@]}")
}

# --- helpers written into the work directory -------------------------------------------------------------------

cat >"$WORK/noop-hook.sh" <<'EOF'
#!/bin/sh
# Deliberately does nothing: the default hooks would rewrite /etc/resolv.conf, routes and the hostname.
exit 0
EOF
chmod +x "$WORK/noop-hook.sh"
echo "# dummy resolv.conf for DHCP golden captures" >"$WORK/resolv.conf"

cat >"$WORK/listener.py" <<'EOF'
"""Records one client's DISCOVER and REQUEST (UDP payload as hex) and answers the DISCOVER with a fake OFFER."""
import select, socket, struct, sys, time

mac, device, out_prefix, first_wait, request_wait = sys.argv[1:6]
mac = bytes.fromhex(mac.replace(":", ""))
server = bytes([10, 98, 7, 1])
offered = bytes([10, 98, 7, 100])

def hex_lines(data):
    text = data.hex()
    return "".join(text[i:i + 64] + "\n" for i in range(0, len(text), 64))

def options(packet):
    result, index = {}, 240
    while index < len(packet):
        code = packet[index]
        if code == 0: index += 1; continue
        if code == 255 or index + 1 >= len(packet): break
        length = packet[index + 1]
        result[code] = result.get(code, b"") + packet[index + 2:index + 2 + length]
        index += 2 + length
    return result

def offer(request, request_options):
    vendor = request_options.get(60, b"")
    reply_options = [(53, b"\x02"), (54, server), (51, struct.pack("!I", 3600)), (1, bytes([255, 255, 255, 0]))]
    boot_file = b"boot.efi"
    if vendor.startswith(b"HTTPClient"):
        reply_options.append((60, b"HTTPClient"))  # HTTP Boot only takes offers that say HTTPClient
        boot_file = b"http://10.98.7.1/boot.efi"
    elif vendor.startswith(b"PXEClient"):
        reply_options.append((60, b"PXEClient"))
    packet = bytearray(240)
    packet[0:4] = bytes([2, 1, 6, 0])
    packet[4:12] = request[4:12]           # xid, secs
    packet[10:12] = request[10:12]         # flags
    packet[16:20] = offered
    packet[20:24] = server
    packet[28:44] = request[28:44]         # chaddr
    packet[108:108 + len(boot_file)] = boot_file
    packet[236:240] = bytes([0x63, 0x82, 0x53, 0x63])
    for code, value in reply_options:
        packet += bytes([code, len(value)]) + value
    packet += b"\xff"
    packet += bytes(max(0, 300 - len(packet)))
    return bytes(packet)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())  # replies leave by srv0 only
sock.bind(("0.0.0.0", 67))
print("listening", flush=True)

deadline = time.monotonic() + float(first_wait)
have_discover = False
while True:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        print("timed out waiting for the", "REQUEST" if have_discover else "DISCOVER", flush=True)
        sys.exit(1 if not have_discover else 2)
    ready, _, _ = select.select([sock], [], [], remaining)
    if not ready:
        continue
    packet, _ = sock.recvfrom(65535)
    if len(packet) < 240 or packet[0] != 1 or packet[28:34] != mac:
        continue
    message_type = options(packet).get(53, b"")
    if message_type == b"\x01" and not have_discover:
        open(out_prefix + "-discover.hex", "w").write(hex_lines(packet))
        have_discover = True
        deadline = time.monotonic() + float(request_wait)
        print(f"DISCOVER {len(packet)} bytes", flush=True)
    if message_type == b"\x01" and have_discover:
        sock.sendto(offer(packet, options(packet)), ("255.255.255.255", 68))
    elif message_type == b"\x03" and have_discover:
        open(out_prefix + "-request.hex", "w").write(hex_lines(packet))
        print(f"REQUEST {len(packet)} bytes", flush=True)
        sys.exit(0)
EOF

# --- lab network ------------------------------------------------------------------------------------------------

ip netns add "$NS_SRV"
ip netns add "$NS_RACK"
ip netns add "$NS_CLI"
ip -n "$NS_RACK" link add br0 type bridge stp_state 0 forward_delay 0
ip netns exec "$NS_RACK" ip link add up0 type veth peer name srv0 netns "$NS_SRV"
ip netns exec "$NS_RACK" ip link add cliport0 type veth peer name eth0 netns "$NS_CLI"
for port in up0 cliport0; do
    ip -n "$NS_RACK" link set "$port" master br0
    ip -n "$NS_RACK" link set "$port" up
done
ip -n "$NS_RACK" link set br0 up
ip -n "$NS_SRV" addr add 10.98.7.1/24 dev srv0
ip -n "$NS_SRV" link set srv0 up
for ns in "$NS_SRV" "$NS_RACK" "$NS_CLI"; do ip -n "$ns" link set lo up; done

# Starts the listener for one capture; sets LISTENER_PID.
start_listener() {
    local name=$1 mac=$2
    ip netns exec "$NS_SRV" python3 -u "$WORK/listener.py" "$mac" srv0 "$WORK/$name" \
        "$WAIT_SECONDS" "$REQUEST_WAIT_SECONDS" >"$WORK/$name.listener.log" 2>&1 &
    LISTENER_PID=$!
    STARTED_PIDS+=("$LISTENER_PID")
    for _ in $(seq 50); do grep -q listening "$WORK/$name.listener.log" && return 0; sleep 0.1; done
    echo "listener for $name did not start:" >&2; cat "$WORK/$name.listener.log" >&2; return 1
}

# Waits for the listener, stops the client, and moves what was captured into the golden folder.
finish_capture() {
    local name=$1 client_pid=$2 status=0
    wait "$LISTENER_PID" || status=$?
    forget_pid "$LISTENER_PID"
    stop_pid "$client_pid"
    local kind
    for kind in discover request; do
        if [[ -f "$WORK/$name-$kind.hex" ]]; then
            mv "$WORK/$name-$kind.hex" "$GOLDEN_DIR/$name-$kind.hex"
            echo "  wrote $name-$kind.hex"
        else
            echo "  NO $kind from $name (listener: $(tail -1 "$WORK/$name.listener.log"))"
        fi
    done
    return 0
}

# Runs a Linux DHCP client in the cli namespace, in its own mount and UTS namespaces (see Safety above).
capture_linux_client() {
    local name=$1 mac=$2; shift 2
    echo "== $name ($mac)"
    ip -n "$NS_CLI" link set eth0 down
    ip -n "$NS_CLI" link set eth0 address "$mac"
    ip -n "$NS_CLI" link set eth0 up
    start_listener "$name" "$mac"
    ip netns exec "$NS_CLI" unshare --uts --mount --propagation private sh -c '
        set -e
        hostname golden-client
        mount --bind "$1/resolv.conf" /etc/resolv.conf
        mount -t tmpfs tmpfs /run
        mkdir -p /var/lib/dhcpcd && mount -t tmpfs tmpfs /var/lib/dhcpcd
        shift
        exec timeout 120 "$@"' sh "$WORK" "$@" >"$WORK/$name.client.log" 2>&1 &
    local client_pid=$!
    STARTED_PIDS+=("$client_pid")
    finish_capture "$name" "$client_pid"
}

# Boots a QEMU VM with its NIC on a tap in the rack namespace; QEMU only needs to send DHCP.
capture_vm() {
    local name=$1 mac=$2 uuid=$3; shift 3
    echo "== $name ($mac, uuid $uuid)"
    ip -n "$NS_RACK" tuntap add tap0 mode tap
    ip -n "$NS_RACK" link set tap0 master br0
    ip -n "$NS_RACK" link set tap0 up
    start_listener "$name" "$mac"
    ip netns exec "$NS_RACK" qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nodefaults -display none \
        -machine graphics=off -serial "file:$WORK/$name.serial.log" -no-reboot \
        -smbios "type=1,manufacturer=Anvil,product=golden-capture,serial=$name,uuid=$uuid" \
        -netdev tap,id=n0,ifname=tap0,script=no,downscript=no "$@" >"$WORK/$name.qemu.log" 2>&1 &
    local qemu_pid=$!
    STARTED_PIDS+=("$qemu_pid")
    finish_capture "$name" "$qemu_pid"
    ip -n "$NS_RACK" link del tap0
}

OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_flags() {
    cp /usr/share/OVMF/OVMF_VARS_4M.fd "$WORK/$1-vars.fd"
    echo "-drive if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
    echo "-drive if=pflash,format=raw,unit=1,file=$WORK/$1-vars.fd"
}

capture() {
    case $1 in
    dhclient)
        capture_linux_client dhclient 02:a7:00:00:00:01 \
            dhclient -4 -1 -d -v -sf "$WORK/noop-hook.sh" -lf "$WORK/dhclient.leases" -pf "$WORK/dhclient.pid" eth0 ;;
    udhcpc)
        capture_linux_client udhcpc 02:a7:00:00:00:02 udhcpc -i eth0 -f -q -n -t 10 -T 2 -s "$WORK/noop-hook.sh" ;;
    dhcpcd)
        capture_linux_client dhcpcd 02:a7:00:00:00:03 \
            dhcpcd -4 -1 -B -t 60 -f /etc/dhcpcd.conf -c "$WORK/noop-hook.sh" eth0 ;;
    ipxe-bios)
        # SeaBIOS (QEMU's default firmware) runs the virtio NIC's iPXE option ROM from ipxe-qemu.
        capture_vm ipxe-bios 52:54:00:a7:00:04 4e1f0c2a-6b3d-4c5e-8f70-a70000000004 \
            -device virtio-net-pci,netdev=n0,mac=52:54:00:a7:00:04,bootindex=1 ;;
    ovmf-pxe)
        # romfile= keeps the NIC ROM's iPXE EFI driver out, so OVMF's own PXE stack sends the DISCOVER.
        # shellcheck disable=SC2046
        capture_vm ovmf-pxe 52:54:00:a7:00:05 4e1f0c2a-6b3d-4c5e-8f70-a70000000005 $(ovmf_flags ovmf-pxe) \
            -device virtio-net-pci,netdev=n0,mac=52:54:00:a7:00:05,bootindex=1,romfile= ;;
    ovmf-http)
        # PXE switched off, so OVMF goes straight to UEFI HTTP Boot.
        # shellcheck disable=SC2046
        capture_vm ovmf-http 52:54:00:a7:00:06 4e1f0c2a-6b3d-4c5e-8f70-a70000000006 $(ovmf_flags ovmf-http) \
            -fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=no \
            -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=no \
            -device virtio-net-pci,netdev=n0,mac=52:54:00:a7:00:06,bootindex=1,romfile= ;;
    *) echo "unknown capture $1" >&2; return 1 ;;
    esac
}

if (($# == 0)); then set -- dhclient udhcpc dhcpcd ipxe-bios ovmf-pxe ovmf-http; fi
for name in "$@"; do capture "$name"; done

if [[ "$(sha256sum /etc/resolv.conf | cut -d' ' -f1)" != "$RESOLV_BEFORE" ]]; then
    echo "capture.sh: /etc/resolv.conf CHANGED during the capture" >&2
    exit 1
fi
echo "done; now run: ANVIL_UPDATE_GOLDEN=1 swift test --filter DHCPWireTests"
