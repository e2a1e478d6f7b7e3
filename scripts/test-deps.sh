#!/usr/bin/env bash
# Install what the test suite needs beyond the Python packages (idempotent, best effort when not root).
#
# - Debian's chromium at /usr/bin/chromium, driven by the Python `playwright` package in the
#   browser tests (tests/web/test_browser.py). Playwright's own browser download is not used: the
#   distribution's build gets security updates with the system and works without a CDN.
set -uo pipefail

CHROMIUM=/usr/bin/chromium

log() { echo "test-deps: $*" >&2; }

install_chromium() {
  if [ -x "$CHROMIUM" ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "$CHROMIUM is missing and this is not root: the browser tests will be skipped" \
        "(install it with: apt-get install chromium)"
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "$CHROMIUM is missing and there is no apt-get: install Chromium by hand"
    return 0
  fi
  log "installing chromium with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1; then
    # The package lists may be stale or absent (a fresh container): refresh once and retry.
    apt-get update -qq >/dev/null 2>&1 || true
    if ! apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
      log "apt-get could not install chromium: the browser tests will fail in CI"
      return 0
    fi
  fi
  [ -x "$CHROMIUM" ] && log "chromium installed: $("$CHROMIUM" --version 2>/dev/null || true)"
}

install_chromium
exit 0
