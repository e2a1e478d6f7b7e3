#!/usr/bin/env bash
# Build Reprise's approved base images locally, without pulling from any registry.
#
#   scripts/build-images.sh            build what is missing (idempotent; `make images` calls this)
#   scripts/build-images.sh --force    rebuild the images from the cached rootfs tarballs
#   REPRISE_REBOOTSTRAP=1 scripts/...  also throw the cached tarballs away and debootstrap again
#
# Each approved base comes in two flavours built from ONE debootstrap run:
#   reprise/python-numpy:bookworm        the runtime image every phase runs in (no pip)
#   reprise/python-numpy-build:bookworm  the same plus python3-pip; used only as the first stage
#                                        of derived environment images (pip install --target)
# The rootfs tarballs are cached under var/images/ (gitignored), so rebuilding after `docker rmi`
# takes seconds. The production equivalent for hosts that can pull is images/<base>/Dockerfile.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${REPRISE_IMAGE_CACHE:-$ROOT/var/images}"
SUITE="${REPRISE_SUITE:-bookworm}"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

log() { printf 'build-images: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v docker >/dev/null || die "docker CLI not found (run scripts/ensure-docker.sh)"
docker info >/dev/null 2>&1 || die "the Docker daemon does not answer (run scripts/ensure-docker.sh)"

# The Debian mirror this machine's apt already uses (it may be a proxy or a snapshot).
find_mirror() {
    if [[ -n "${REPRISE_DEBIAN_MIRROR:-}" ]]; then echo "$REPRISE_DEBIAN_MIRROR"; return; fi
    local uri
    uri="$(grep -hoE '(URIs:|^deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
            2>/dev/null | grep -oE 'https?://[^[:space:]]+' | head -n1 || true)"
    echo "${uri:-http://deb.debian.org/debian}"
}

# Python/BLAS settings shared by both flavours. OpenBLAS threads are capped by the run's env.
ENV_CHANGES=(
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV LANG=C.UTF-8'
    --change 'ENV PYTHONDONTWRITEBYTECODE=1'
    --change 'WORKDIR /'
    --change 'CMD ["python3"]'
)

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# debootstrap one rootfs with pip, tar it (build flavour), purge pip, tar it again (runtime flavour).
bootstrap() {
    local name="$1" packages="$2" runtime_tar="$3" build_tar="$4"
    [[ $EUID -eq 0 ]] || die "debootstrap needs root"
    if ! command -v debootstrap >/dev/null; then
        command -v apt-get >/dev/null || die "debootstrap not found and no apt-get to install it"
        log "installing debootstrap with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends debootstrap >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends debootstrap >/dev/null; } \
            || die "could not install debootstrap"
    fi
    local mirror dir
    mirror="$(find_mirror)"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/reprise-rootfs-${name}.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$dir'" EXIT
    log "debootstrap $SUITE ($packages,python3-pip) from $mirror into $dir"
    debootstrap --variant=minbase --include="$packages,python3-pip" "$SUITE" "$dir" "$mirror" \
        >"$CACHE/$name.debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $CACHE/$name.debootstrap.log"
    # Slim the rootfs: apt caches, docs, man pages and locales are never used at run time.
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
           "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/*
    # No setuid/setgid programs at all (su, mount, passwd...): no-new-privileges already makes
    # them harmless in a run; this is the second belt.
    find "$dir" -xdev -type f -perm /6000 -exec chmod ug-s {} +
    tar --numeric-owner -C "$dir" -cf "$build_tar.tmp" . && mv "$build_tar.tmp" "$build_tar"
    log "purging pip for the runtime flavour"
    chroot "$dir" dpkg --purge python3-pip python3-setuptools python3-wheel \
        >>"$CACHE/$name.debootstrap.log" 2>&1 || die "could not purge pip from the rootfs"
    rm -rf "$dir"/usr/share/doc/* "$dir"/var/log/dpkg.log "$dir"/var/log/apt
    tar --numeric-owner -C "$dir" -cf "$runtime_tar.tmp" . && mv "$runtime_tar.tmp" "$runtime_tar"
    rm -rf "$dir"
    trap - EXIT
}

import_image() {
    local tar="$1" tag="$2" base="$3" flavour="$4"
    log "importing $tar as $tag"
    docker import "${ENV_CHANGES[@]}" \
        --change "LABEL org.reprise.base=$base org.reprise.flavour=$flavour" \
        "$tar" "$tag" >/dev/null
}

verify_image() {
    local tag="$1" version
    version="$(docker run --rm --network none --user 65534:65534 --read-only "$tag" \
        python3 -c 'import numpy; print(numpy.__version__)')" \
        || die "$tag does not import numpy"
    log "verified $tag: python3 + numpy $version"
}

# base name | runtime tag | build tag | debootstrap --include list
BASES=(
    "python-numpy|reprise/python-numpy:$SUITE|reprise/python-numpy-build:$SUITE|python3-minimal,python3-numpy,python-is-python3,ca-certificates"
)

mkdir -p "$CACHE"
start=$SECONDS
for entry in "${BASES[@]}"; do
    IFS='|' read -r base tag build_tag packages <<<"$entry"
    runtime_tar="$CACHE/$base-$SUITE.tar"
    build_tar="$CACHE/$base-$SUITE-build.tar"
    if [[ $FORCE -eq 0 ]] && have_image "$tag" && have_image "$build_tag"; then
        log "$tag and $build_tag present, nothing to do"
        continue
    fi
    if [[ "${REPRISE_REBOOTSTRAP:-0}" == 1 ]]; then rm -f "$runtime_tar" "$build_tar"; fi
    if [[ -f "$runtime_tar" && -f "$build_tar" ]]; then
        log "using cached rootfs tarballs $runtime_tar, $build_tar"
    else
        bootstrap "$base" "$packages" "$runtime_tar" "$build_tar"
    fi
    if [[ $FORCE -eq 1 ]] || ! have_image "$tag"; then
        import_image "$runtime_tar" "$tag" "$base" runtime
    fi
    if [[ $FORCE -eq 1 ]] || ! have_image "$build_tag"; then
        import_image "$build_tar" "$build_tag" "$base" build
    fi
    verify_image "$tag"
    docker run --rm --network none "$build_tag" python3 -m pip --version >/dev/null \
        || die "$build_tag has no working pip"
    log "$base: $(docker image inspect --format '{{.Id}}' "$tag")"
done
log "done in $((SECONDS - start)) s"
