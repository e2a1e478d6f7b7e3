#!/usr/bin/env bash
# Regenerate requirements.lock: exact pins with sha256 hashes of every runtime dependency of
# pyproject.toml (not the dev extras), for the service image (Dockerfile).
#
#   deploy/lock.sh            resolve against PyPI as it is today and rewrite requirements.lock
#
# pip-tools runs in a throwaway virtualenv, so the project's .venv is untouched. The resolution
# ignores this machine's pip configuration files (local wheel folders and file:// indexes would
# otherwise leak into the pins), except the CA bundle: PIP_CERT, else the system bundle.
# Resolving and hashing takes a few minutes. Review the diff, then rebuild the image.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIP_TOOLS="${PIP_TOOLS:-pip-tools==7.6.2}"
PYTHON="${PYTHON:-python3}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/reprise-lock.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL
export PIP_CERT="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
export CUSTOM_COMPILE_COMMAND="deploy/lock.sh"

"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet "$PIP_TOOLS"
cd "$ROOT"
"$tmp/venv/bin/pip-compile" --quiet --generate-hashes --strip-extras --allow-unsafe \
    --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
echo "requirements.lock: $(grep -cE '^[A-Za-z0-9]' requirements.lock) pinned packages" >&2
