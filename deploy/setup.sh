#!/usr/bin/env bash
# Sets up a Debian 12 machine (with Swift installed) to build and run Anvil: installs the system
# packages Anvil links against, then builds it. Safe to run again; it only installs what is missing.
#   deploy/setup.sh            build for running (debug, fast to build)
#   deploy/setup.sh --tests    also install the test peers and build the test suite
#   CONFIGURATION=release deploy/setup.sh   optimised build (what deploy/install.sh uses)
set -euo pipefail
cd "$(dirname "$0")/.."

build_packages=(pkg-config libsqlite3-dev libfreeipmi-dev libipmimonitoring-dev libssh2-1-dev libcurl4-openssl-dev
    libarchive-dev)
# Boot loaders served to machines (undionly.kpxe, ipxe.efi) and tools the setup itself uses;
# cpio and gzip pack the discovery image (deploy/build-discovery-image.sh downloads its Debian
# packages itself with apt-get download, so busybox-static etc. are not installed on the host).
runtime_packages=(ipxe curl ca-certificates cpio gzip)
# Peers the tests talk to: sqlite3 to inspect the database; real TFTP clients (tftp-hpa, atftp;
# curl is above); real DHCP clients (dhclient, udhcpc, dhcpcd) and dnsmasq as a relay and as the
# address server beside proxy mode; iproute2 and nftables for the tests' own network namespaces;
# QEMU with SeaBIOS and its iPXE NIC ROMs, and OVMF (UEFI), for machines that really network-boot;
# OpenIPMI's ipmi_sim as real BMCs, with FreeIPMI's ipmipower and ipmitool as their peers in the power benchmark;
# Debian's netboot installer, which a test boots far enough to fetch the preseed Anvil renders;
# python3 (http.server) serves disk images to the image-deploy task, which gets them gzip- and xz-compressed;
# xorriso builds the small ISO images the boot-media import tests extract from.
test_packages=(sqlite3 procps busybox tftp-hpa atftp isc-dhcp-client udhcpc dhcpcd-base dnsmasq-base iproute2 nftables
    qemu-system-x86 ipxe-qemu seabios ovmf openipmi freeipmi-tools ipmitool debian-installer-12-netboot-amd64
    python3 xz-utils xorriso)

with_tests=false
[ "${1:-}" = "--tests" ] && with_tests=true

wanted=("${build_packages[@]}" "${runtime_packages[@]}")
$with_tests && wanted+=("${test_packages[@]}")
missing=()
for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (install Swift 6 first)" >&2; exit 1; }
# The discovery image unknown machines boot (cached: a no-op when nothing changed), served from
# .build-discovery/boot-files by default.
deploy/build-discovery-image.sh
configuration=${CONFIGURATION:-debug}
if $with_tests; then
    swift build -c "$configuration" --build-tests
else
    swift build -c "$configuration" --product anvil
fi
echo "setup: built $(swift build -c "$configuration" --show-bin-path)/anvil"
