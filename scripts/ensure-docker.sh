#!/usr/bin/env bash
# Make sure a Docker engine answers, idempotently:
#   1. `docker info` works          -> nothing to do
#   2. dockerd is not installed     -> apt-get install docker.io (non-interactive, needs root)
#   3. dockerd is not running       -> start it in the background, logging to a file
#   4. wait until `docker info` answers (REPRISE_DOCKER_WAIT_S, default 60 s)
# Prints what it did; exits non-zero when Docker cannot be had.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WAIT_S="${REPRISE_DOCKER_WAIT_S:-60}"

say() { printf 'ensure-docker: %s\n' "$*"; }
die() { printf 'ensure-docker: ERROR: %s\n' "$*" >&2; exit 1; }
answers() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
server_version() { docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'; }

if answers; then
    say "Docker $(server_version) already answers; nothing to do"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    [[ $EUID -eq 0 ]] || die "docker.io is not installed and installing it needs root"
    command -v apt-get >/dev/null 2>&1 || die "no apt-get: install Docker for this OS by hand"
    say "installing docker.io with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends docker.io >/dev/null 2>&1; then
        apt-get update -q >/dev/null || die "apt-get update failed"
        apt-get install -y -q --no-install-recommends docker.io >/dev/null \
            || die "apt-get install docker.io failed"
    fi
    say "installed $(dockerd --version 2>/dev/null || echo docker.io)"
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is running but does not answer yet; waiting"
    LOG="(the running dockerd's own log)"
else
    [[ $EUID -eq 0 ]] || die "dockerd is not running and starting it needs root"
    LOG=/var/log/dockerd.log
    if ! { : >>"$LOG"; } 2>/dev/null; then
        mkdir -p "$ROOT/var"
        LOG="$ROOT/var/dockerd.log"
    fi
    nohup dockerd >>"$LOG" 2>&1 </dev/null &
    say "started dockerd (pid $!), logging to $LOG"
fi

for ((waited = 0; waited < WAIT_S; waited++)); do
    if answers; then
        say "Docker $(server_version) answers after ${waited} s"
        exit 0
    fi
    sleep 1
done
die "Docker did not answer within ${WAIT_S} s; see $LOG"
