#!/usr/bin/env bash
# Power benchmark: power status across simulated BMCs (OpenIPMI ipmi_sim on 127.0.0.1), Anvil's
# FreeIPMIPower against FreeIPMI's ipmipower and ipmitool on the same BMCs in the same run.
#   deploy/bench/power.sh                      50 BMCs, 16 in flight, 5 rounds (release build)
#   deploy/bench/power.sh --bmcs 100 --rounds 3
# Prints wall time per round, per-command p50/p99, and peer time / Anvil time (above 1: Anvil is faster).
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(openipmi freeipmi-tools ipmitool libfreeipmi-dev libipmimonitoring-dev)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
swift build -c release --product anvil-bench >/dev/null
exec "$(swift build -c release --show-bin-path)/anvil-bench" power "$@"
