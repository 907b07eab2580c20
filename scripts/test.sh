#!/usr/bin/env bash
# The README's test command: install what the tests need, build, run every test.
# As root (CI) it also installs the Debian packages the TAP / real-Linux tests use;
# those tests then run for real (they do not skip when CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = "0" ]; then bash scripts/install-system-deps.sh; fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then npm ci --no-audit --no-fund; fi
# The addon is built by npm ci's install step; rebuild it when its source changed since.
if [ ! -f build/Release/slabnet_tap.node ] || [ native/tap.c -nt build/Release/slabnet_tap.node ] || [ binding.gyp -nt build/Release/slabnet_tap.node ]; then
  npm run build:native --silent || echo 'slabnet: the native TAP addon did not build' >&2
fi
npm run build --silent
node scripts/run-tests.mjs "$@"
