#!/usr/bin/env bash
# The test command: sets the machine up (packages, build) and runs the whole suite.
# Extra arguments go to `swift test`, e.g. deploy/test.sh --filter SQLiteInventoryTests
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh --tests
export ANVIL_BINARY="$(swift build --show-bin-path)/anvil"
swift test --skip-build "$@"
