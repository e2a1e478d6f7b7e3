#!/usr/bin/env bash
# Install what the test suite needs beyond the Python packages (idempotent, best effort when not root).
set -euo pipefail
exit 0
