# Sourced by .ci/run: a Vulkan device for the webgpu tests on a CPU-only machine, Mesa's software
# rasteriser lavapipe. Debian bookworm's Mesa 22.3 is too old for Dawn (onnxruntime's WebGPU; it
# lacks shaderUniform*ArrayDynamicIndexing); Mesa 25 from bookworm-backports works. Backports
# come from the Debian mirror apt is already configured with, so nothing new is reached.
# Exports what the tests need: XDG_RUNTIME_DIR (Mesa's Vulkan WSI expects one) and
# DELTASERVE_TEST_WEBGPU=required, so a missing driver fails the webgpu tests instead of skipping.

. /etc/os-release
webgpu_suite="${VERSION_CODENAME:?}"
webgpu_sources() { apt-get indextargets --no-release-info --format '$(SITE) $(RELEASE)' 'Identifier: Packages' | sort -u; }
if [ "$VERSION_CODENAME" = bookworm ]; then
  webgpu_suite=bookworm-backports
  if ! webgpu_sources | grep -q " bookworm-backports$"; then
    webgpu_mirror=$(webgpu_sources | awk '$2 == "bookworm" { print $1; exit }')
    [ -n "$webgpu_mirror" ] || { echo ".ci/webgpu.sh: no apt source for bookworm to add bookworm-backports from" >&2; exit 1; }
    webgpu_keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    { printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\n' "$webgpu_mirror"
      if [ -f "$webgpu_keyring" ]; then echo "Signed-By: $webgpu_keyring"; fi
    } > /etc/apt/sources.list.d/deltaserve-backports.sources
  fi
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t "$webgpu_suite" mesa-vulkan-drivers libvulkan1 >/dev/null
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null || { echo ".ci/webgpu.sh: lavapipe (lvp_icd) is not installed" >&2; exit 1; }

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"
export DELTASERVE_TEST_WEBGPU=required
