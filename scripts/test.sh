#!/usr/bin/env bash
# The README's test command: install what the tests need, build, run every test.
# As root (CI) it also installs the Debian packages the TAP / real-Linux tests use;
# those tests then run for real (they do not skip when CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = "0" ]; then bash scripts/install-system-deps.sh; fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then npm ci --no-audit --no-fund; fi
npm run build --silent
node scripts/run-tests.mjs "$@"
