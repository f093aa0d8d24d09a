#!/usr/bin/env bash
# Installs Anvil as a systemd service: optimised build, binary in /usr/local/bin, content in
# /usr/share/anvil, configuration in /etc/anvil/anvil.yaml, state in /var/lib/anvil, user `anvil`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "install: run as root" >&2; exit 1; }
CONFIGURATION=release deploy/setup.sh
install -m 0755 "$(swift build -c release --show-bin-path)/anvil" /usr/local/bin/anvil
install -d /usr/share/anvil
rm -rf /usr/share/anvil/bootenvs /usr/share/anvil/templates
cp -r bootenvs templates /usr/share/anvil/
# The discovery image (built by setup.sh), where the default bootFiles.imageDirectory looks:
# <contentDirectory>/.build-discovery/boot-files.
rm -rf /usr/share/anvil/.build-discovery
install -d /usr/share/anvil/.build-discovery
cp -r .build-discovery/boot-files /usr/share/anvil/.build-discovery/
id anvil >/dev/null 2>&1 || useradd --system --home-dir /var/lib/anvil --shell /usr/sbin/nologin anvil
install -d -m 0750 /etc/anvil
[ -f /etc/anvil/anvil.yaml ] || install -m 0640 -g anvil deploy/anvil.yaml /etc/anvil/anvil.yaml
install -m 0644 deploy/anvil.service /etc/systemd/system/anvil.service
systemctl daemon-reload
systemctl enable --now anvil
echo "install: anvil is running; the first admin token is in /var/lib/anvil/admin.token"
