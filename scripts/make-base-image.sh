#!/usr/bin/env bash
# Build a Debian bookworm + Python 3.11 base image locally, for networks with no access to Docker Hub or
# behind a TLS-intercepting proxy: debootstrap from the apt mirror this machine uses, trust the host's CA
# bundle inside, and import the result into the container engine. Needs root (debootstrap, chroot).
#
# Usage: scripts/make-base-image.sh [TAG]      (default localhost/model-service-base:bookworm)
set -euo pipefail

tag="${1:-localhost/model-service-base:bookworm}"
engine="${CONTAINER_ENGINE:-podman}"
host_ca="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

if "$engine" image exists "$tag" 2>/dev/null; then
    echo "Base image $tag already exists (remove it to rebuild)."
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "debootstrap needs root: run as root or with sudo." >&2; exit 1; }

# The first Debian mirror apt is configured with (deb822 or one-line sources).
mirror="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1 || true)"
[ -n "$mirror" ] || mirror="$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
mirror="${mirror:-http://deb.debian.org/debian}"

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$rootfs" "$mirror"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# Manuals and translations (~50 MB) serve nobody in a container: the image keeps to what serving needs.
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*

# Trust what the host trusts (a corporate TLS proxy's CA included), for apt, pip and uv inside builds.
install -D -m 0644 "$host_ca" "$rootfs/etc/ssl/certs/host-ca-bundle.crt"

tar -C "$rootfs" -c . | "$engine" import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/host-ca-bundle.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt' \
    --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/host-ca-bundle.crt' \
    --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
    --change 'CMD ["/usr/bin/python3"]' \
    - "$tag"
echo "Built $tag ($("$engine" image inspect "$tag" --format '{{.Size}}') bytes)"
