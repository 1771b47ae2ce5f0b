#!/usr/bin/env bash
# CTest entry of the browser test: run.sh SEMAT_BINARY OUT_DIR
# Installs playwright-core from package-lock.json on first use (never a browser: Debian's
# chromium is used), then runs browser_test.mjs. Exit 77 (skipped) only when node is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
semat="$1"
out="$2"
if ! command -v node >/dev/null 2>&1; then
  echo "browser test skipped: node is not installed (apt-get install nodejs npm)"
  exit 77
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "browser test: /usr/bin/chromium is missing; run 'make deps' (scripts/install-deps.sh)" >&2
  exit 1
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -f "$here/node_modules/playwright-core/package.json" ] ||
   [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  echo "browser test: npm ci (playwright-core only)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
mkdir -p "$out"
exec node "$here/browser_test.mjs" "$semat" "$out"
