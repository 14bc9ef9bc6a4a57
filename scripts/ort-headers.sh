#!/bin/sh
# Puts ONNX Runtime's C/C++ API headers in $1 (default build/ort-headers) for the custom-op addon
# (native/ort-custom-op), without installing anything: Debian's libonnxruntime-dev is fetched with
# `apt-get download` through a private sources list and apt state folder, and only
# usr/include/onnxruntime is extracted. Installing the package would pull in Debian's own ORT
# library, a second runtime that must never be loaded beside onnxruntime-node's.
# The mirror is the one apt is already configured with (nothing new is reached). Suites tried in
# order: trixie (API 21), sid. Prints the include folder on success; exits non-zero otherwise,
# which scripts/build-native.mjs reports and survives (mixed mode then runs its segment pipeline).
set -eu
out="${1:-build/ort-headers}"
if [ -f "$out/onnxruntime_c_api.h" ]; then echo "$out"; exit 0; fi
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { echo "apt-get/dpkg-deb not found" >&2; exit 1; }

mirror=$(apt-get indextargets --no-release-info --format '$(SITE) $(RELEASE)' 'Identifier: Packages' 2>/dev/null |
  awk '$2 !~ /security|updates|backports/ { print $1; exit }')
if [ -z "$mirror" ]; then
  # No lists fetched yet: read the sources files themselves (deb822 URIs: or one-line deb entries).
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }')
fi
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }')
fi
[ -n "$mirror" ] || { echo "no Debian mirror in apt's sources" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc/preferences.d" "$work/deb"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
for suite in trixie sid; do
  signed=""
  [ -f "$keyring" ] && signed="Signed-By: $keyring"
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n%s\n' "$mirror" "$suite" "$signed" > "$work/etc/ort.sources"
  apt_opts="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$work/etc -o Dir::Etc::Preferences=/dev/null
    -o Dir::Etc::PreferencesParts=$work/etc/preferences.d -o Dir::State=$work -o Dir::State::Lists=$work/lists
    -o Dir::State::status=/dev/null -o Dir::Cache=$work/cache -o Debug::NoLocking=1 -o APT::Architecture=amd64
    -o Acquire::Languages=none -o APT::Get::List-Cleanup=0 -o Acquire::http::Timeout=30 -o Acquire::Retries=1"
  # shellcheck disable=SC2086
  if apt-get $apt_opts -qq update >"$work/update.log" 2>&1 &&
    (cd "$work/deb" && apt-get $apt_opts -qq download libonnxruntime-dev >"$work/download.log" 2>&1); then
    deb=$(ls "$work"/deb/libonnxruntime-dev_*.deb 2>/dev/null | head -n 1)
    if [ -n "$deb" ]; then
      dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./usr/include/onnxruntime
      if [ -f "$work/usr/include/onnxruntime/onnxruntime_c_api.h" ]; then
        mkdir -p "$out"
        cp -R "$work/usr/include/onnxruntime/." "$out/"
        basename "$deb" > "$out/SOURCE"
        echo "$out"
        exit 0
      fi
    fi
  fi
  rm -rf "$work/lists"/* "$work/deb"/*
  mkdir -p "$work/lists/partial"
done
echo "libonnxruntime-dev could not be fetched from $mirror (trixie, sid)" >&2
exit 1
