#!/usr/bin/env bash
# Sets up and runs Anvil on its embedded defaults: SQLite in ./anvil-data, the admin API on
# https://127.0.0.1:8443 (self-signed CA in ./anvil-data/tls/ca.pem), the boot plane on :8080.
# Extra arguments go to `anvil serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh
exec "$(swift build --show-bin-path)/anvil" serve "$@"
