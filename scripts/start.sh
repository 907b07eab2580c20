#!/usr/bin/env bash
# The README's first command: install, build and run slabnet's main job.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then npm ci --no-audit --no-fund; fi
npm run build --silent
node dist/cli/main.js demo "$@"
