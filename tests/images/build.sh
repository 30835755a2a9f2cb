#!/usr/bin/env bash
# Build the local stand-in images used by the integration tests.
#
#   paas-test/bookworm:base   debootstrap'ed Debian bookworm (minbase), via `docker import`
#   paas-test/redis:7         Debian's redis-server, behaving like the official redis:7 image
#   paas-test/postgres:16     Debian's PostgreSQL 15 with an official-image-like entrypoint
#   paas-test/standin:1       one Python process faking MongoDB/Meilisearch/MinIO/Mailpit
#   paas-test/registry:2      Debian's docker-registry (Distribution 2.8), plain HTTP on :5000, for pull tests
#   paas-test/node:1          Debian's docker.io + sshd: a Docker engine in a container (multinode tests)
#   paas-test/mariadb:11      Debian's MariaDB 10.11 with an official-image-like entrypoint
#   paas-test/rabbitmq:4      Debian's RabbitMQ 3.10 honouring RABBITMQ_DEFAULT_USER/PASS/VHOST
#   paas-test/mosquitto:2     Debian's Mosquitto 2.0: a service NOT in the catalog (user templates)
#   paas-test/valkey:8        Debian's redis-server 7.0 as valkey-server/valkey-cli (Debian has no Valkey)
#   paas-test/minio:standin   moto's S3 server on :9000 + MinIO's health paths (wheels fetched on the host)
#
# No container registry is needed: everything comes from the Debian mirror (the
# registry image above is itself built from a Debian package).
#
# The build is cached and idempotent: every image carries the label
# paas-test.hash=<sha256 of its recipe> (for the Dockerfile images: of the
# contents of the Dockerfile directory) and is only rebuilt when the label
# differs from the current hash.  Images derived from the base also record the
# base image ID (label paas-test.base) and are rebuilt when the base changes.
#
# Environment:
#   PAAS_TEST_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   PAAS_TEST_REBUILD=1       ignore the cache and rebuild everything
#   TMPDIR                    where the debootstrap tree is created (default /var/tmp)
#
# Progress goes to stderr; stdout stays empty.
set -euo pipefail

IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly IMAGES_DIR
readonly MIRROR="${PAAS_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
readonly SUITE=bookworm
readonly BASE_TAG=paas-test/bookworm:base
# Bump when the base recipe below changes (the mirror is deliberately not part of it).
readonly BASE_RECIPE="v2 suite=${SUITE} variant=minbase env=PATH,LANG=C.UTF-8 policy-rc.d docker-clean nodoc nolocale"
readonly BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The legacy builder works with every client/engine combination we meet
# (docker CLI 28 + dockerd 20.10 without buildx here); BuildKit would need buildx.
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}"

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

now() { date +%s; }

# sha256 over the relative paths and contents of every file under $1.
dir_hash() {
    local dir="$1"
    (
        cd "$dir"
        find . -type f ! -name '*~' ! -name '*.swp' -print0 \
            | LC_ALL=C sort -z \
            | xargs -0 -r sha256sum
    ) | sha256sum | cut -d' ' -f1
}

string_hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# Prints the value of label $2 of image $1, or nothing if the image is absent.
image_label() {
    docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# --------------------------------------------------------------------------
# Base image
# --------------------------------------------------------------------------
ROOTFS=""
cleanup_rootfs() {
    [ -n "$ROOTFS" ] && [ -d "$ROOTFS" ] || return 0
    # debootstrap mounts proc/sys (and sometimes more) inside the target while
    # running; never rm -rf across a live mount.
    local m
    awk -v r="$ROOTFS/" 'index($2 "/", r) == 1 { print $2 }' /proc/mounts | sort -r \
        | while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf --one-file-system "${ROOTFS:?}" "${ROOTFS:?}.log"
    ROOTFS=""
}
trap cleanup_rootfs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_base() {
    local want have
    want="$(string_hash "$BASE_RECIPE")"
    have="$(image_label "$BASE_TAG" paas-test.hash)"
    if [ -z "${PAAS_TEST_REBUILD:-}" ] && [ "$have" = "$want" ]; then
        log "$BASE_TAG: up to date"
        return 0
    fi
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    [ "$(id -u)" = 0 ] || die "building $BASE_TAG needs root (debootstrap)"

    local t0; t0="$(now)"
    log "$BASE_TAG: debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
    ROOTFS="$(mktemp -d "${TMPDIR:-/var/tmp}/paas-test-rootfs.XXXXXX")"
    local dlog="$ROOTFS.log"
    if ! debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$dlog" 2>&1; then
        tail -n 30 "$dlog" >&2 || true
        [ -f "${ROOTFS:?}/debootstrap/debootstrap.log" ] && tail -n 30 "${ROOTFS:?}/debootstrap/debootstrap.log" >&2
        die "debootstrap failed"
    fi
    rm -f "$dlog"

    # Container niceties, as in the usual Debian base images.
    # Never start daemons from maintainer scripts during `docker build`.
    printf '#!/bin/sh\nexit 101\n' >"${ROOTFS:?}/usr/sbin/policy-rc.d"
    chmod 755 "${ROOTFS:?}/usr/sbin/policy-rc.d"
    # Do not keep downloaded .debs around.
    cat >"${ROOTFS:?}/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    cat >"${ROOTFS:?}/etc/apt/apt.conf.d/docker-no-recommends" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
    # Documentation is dead weight in test images.
    cat >"${ROOTFS:?}/etc/dpkg/dpkg.cfg.d/docker-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    find "${ROOTFS:?}/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    rm -rf --one-file-system "${ROOTFS:?}/usr/share/man/"* "${ROOTFS:?}/usr/share/info/"*
    find "${ROOTFS:?}/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
    rm -rf --one-file-system "${ROOTFS:?}/var/lib/apt/lists/"* "${ROOTFS:?}/var/cache/apt/"*.bin \
           "${ROOTFS:?}/var/cache/apt/archives/"*.deb "${ROOTFS:?}/var/log/"*.log \
           "${ROOTFS:?}/var/log/apt/"* "${ROOTFS:?}/debootstrap"
    # The engine mounts its own /dev, /proc, /sys.
    rm -rf --one-file-system "${ROOTFS:?}/dev/"* "${ROOTFS:?}/proc/"* "${ROOTFS:?}/sys/"*
    : >"${ROOTFS:?}/etc/hostname"
    : >"${ROOTFS:?}/etc/resolv.conf"

    log "$BASE_TAG: docker import"
    tar --numeric-owner -C "$ROOTFS" -c . \
        | docker import \
            --change "ENV PATH=$BASE_PATH" \
            --change 'ENV LANG=C.UTF-8' \
            --change "LABEL paas-test.hash=$want" \
            --change 'CMD ["bash"]' \
            - "$BASE_TAG" >/dev/null
    cleanup_rootfs
    log "$BASE_TAG: built in $(( $(now) - t0 ))s ($(docker image inspect -f '{{.Size}}' "$BASE_TAG" | numfmt --to=si))"
}

# --------------------------------------------------------------------------
# Dockerfile images
# --------------------------------------------------------------------------
build_dockerfile() {
    local tag="$1" dir="$IMAGES_DIR/$2"
    [ -f "$dir/Dockerfile" ] || die "$dir/Dockerfile not found"
    local want base_id have have_base
    want="$(dir_hash "$dir")"
    base_id="$(image_id "$BASE_TAG")"
    have="$(image_label "$tag" paas-test.hash)"
    have_base="$(image_label "$tag" paas-test.base)"
    if [ -z "${PAAS_TEST_REBUILD:-}" ] && [ "$have" = "$want" ] && [ "$have_base" = "$base_id" ]; then
        log "$tag: up to date"
        return 0
    fi
    local t0; t0="$(now)"
    log "$tag: building from ${dir#"$IMAGES_DIR"/}/ (hash ${want:0:12})"
    local out; out="$(mktemp)"
    if ! docker build --pull=false --rm --force-rm \
            --label "paas-test.hash=$want" \
            --label "paas-test.base=$base_id" \
            -t "$tag" "$dir" >"$out" 2>&1; then
        tail -n 40 "$out" >&2
        rm -f "$out"
        die "docker build of $tag failed"
    fi
    rm -f "$out"
    log "$tag: built in $(( $(now) - t0 ))s ($(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=si))"
}

# Containers reach the Debian mirror but not PyPI: wheels are downloaded on the host into
# $1/wheels (for the image's Python 3.11 on x86_64), once per requirements.txt content.
fetch_wheels() {
    local dir="$IMAGES_DIR/$1" want have pip
    want="$(sha256sum "$dir/requirements.txt" | cut -d' ' -f1)"
    have="$(cat "$dir/wheels/.requirements-hash" 2>/dev/null || true)"
    [ "$have" = "$want" ] && return 0
    pip="${PIP:-$(command -v "$IMAGES_DIR/../../.venv/bin/pip" || echo "python3 -m pip")}"
    log "$1: downloading wheels on the host ($pip)"
    rm -rf "$dir/wheels"
    $pip download --quiet --only-binary=:all: --python-version 3.11 --implementation cp \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_34_x86_64 --platform any -d "$dir/wheels" -r "$dir/requirements.txt" >&2 \
        || die "pip download for $1 failed"
    # Part of the hashed content (the image is rebuilt when the wheels change): deterministic.
    printf '%s' "$want" >"$dir/wheels/.requirements-hash"
}

main() {
    command -v docker >/dev/null || die "docker CLI not found"
    docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running?)"

    # Serialise concurrent runs (e.g. two test sessions at once).
    if command -v flock >/dev/null; then
        exec 9>"${TMPDIR:-/tmp}/paas-test-images.lock"
        flock 9
    fi

    local t0; t0="$(now)"
    build_base
    build_dockerfile paas-test/redis:7 redis
    build_dockerfile paas-test/postgres:16 postgres
    build_dockerfile paas-test/standin:1 standin
    build_dockerfile paas-test/registry:2 registry
    build_dockerfile paas-test/node:1 node
    build_dockerfile paas-test/mariadb:11 mariadb
    build_dockerfile paas-test/rabbitmq:4 rabbitmq
    build_dockerfile paas-test/mosquitto:2 mosquitto
    build_dockerfile paas-test/valkey:8 valkey
    fetch_wheels minio
    build_dockerfile paas-test/minio:standin minio
    # Drop the dangling layers left behind by rebuilds.
    docker image prune -f --filter label=paas-test.hash >/dev/null 2>&1 || true
    log "all images ready ($(( $(now) - t0 ))s)"
}

main "$@"
