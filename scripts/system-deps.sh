#!/usr/bin/env bash
# Install what Slipway's local parts need, on Debian 12 and Debian 13 alike. Idempotent; root only.
#
# From the machine's own Debian release: an OCI registry, containerd and runc (what dockerd runs containers with),
# QEMU for the non-native platform, debootstrap for air-gapped bases.
#
# The builder: dockerd 26 + the docker CLI 26 + the buildx 0.13 plugin, the versions CodeBuild's images run, come from
# Debian 13's packages (`docker.io`, `docker-cli`, `docker-buildx`). They are unpacked with `dpkg-deb -x` into a private
# prefix (BUILDER_PREFIX) instead of being installed: on Debian 12 the system keeps its own docker.io 20.10 (or none),
# apt's state is never touched, and nothing else on the machine changes. Their dependencies (libc >= 2.34,
# containerd >= 1.4, runc, tini) are all satisfied by Debian 12's packages. Debian 13 gets the same prefix, so both
# releases run the same builder.
set -euo pipefail

BUILDER_PREFIX=${SLIPWAY_BUILDER_PREFIX:-/opt/slipway/builder}
BUILDER_SUITE=trixie
BUILDER_PACKAGES=(docker.io docker-cli docker-buildx)

packages=(containerd runc tini iptables docker-registry qemu-user-static binfmt-support debootstrap chromium)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# busybox-static for arm64 seeds the local base image: the foreign architecture must be known to apt.
foreign=$(dpkg --print-foreign-architectures)
[[ " $foreign " == *" arm64 "* ]] || needs_arch=1
[[ -x "$BUILDER_PREFIX/usr/sbin/dockerd" && -x "$BUILDER_PREFIX/usr/libexec/docker/cli-plugins/docker-buildx" ]] ||
  needs_builder=1

if [[ ${#missing[@]} -gt 0 || -n "${needs_arch:-}" || -n "${needs_builder:-}" ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "system-deps: missing ${missing[*]:-}${needs_arch:+ (and dpkg architecture arm64)}${needs_builder:+ (and the builder in $BUILDER_PREFIX)}; run 'make deps' as root" >&2
    exit 2
  fi
  [[ -n "${needs_arch:-}" ]] && dpkg --add-architecture arm64
  if [[ ${#missing[@]} -gt 0 || -n "${needs_arch:-}" ]]; then
    apt-get update -qq
  fi
  if [[ ${#missing[@]} -gt 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if [[ -n "${needs_builder:-}" ]]; then
  # A private apt state: its own sources, lists and cache, so the system's apt never sees Debian 13.
  apt_dir=$(mktemp -d /tmp/slipway-apt.XXXXXX)
  trap 'rm -rf "$apt_dir"' EXIT
  mkdir -p "$apt_dir"/{sources,lists/partial,cache/archives/partial,debs}
  cat >"$apt_dir/sources/trixie.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $BUILDER_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt_options=(
    -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt_dir/sources"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
  )
  apt-get "${apt_options[@]}" update -qq
  (cd "$apt_dir/debs" && apt-get "${apt_options[@]}" download -qq "${BUILDER_PACKAGES[@]}")
  staging="$BUILDER_PREFIX.partial"
  rm -rf "$staging"
  mkdir -p "$staging"
  for deb in "$apt_dir"/debs/*.deb; do dpkg-deb -x "$deb" "$staging"; done
  # The CLI finds plugins in $DOCKER_CONFIG/cli-plugins: Slipway points DOCKER_CONFIG here (pipeline.builders.docker_cli).
  mkdir -p "$staging/config/cli-plugins"
  ln -sf ../../usr/libexec/docker/cli-plugins/docker-buildx "$staging/config/cli-plugins/docker-buildx"
  (cd "$apt_dir/debs" && ls -1 *.deb) >"$staging/PACKAGES"
  rm -rf "$BUILDER_PREFIX"
  mkdir -p "$(dirname "$BUILDER_PREFIX")"
  mv "$staging" "$BUILDER_PREFIX"
fi

# Containers do not mount binfmt_misc by default; QEMU registers arm64 only once it is.
if [[ $(id -u) -eq 0 ]]; then
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    # binfmt-support's registration; where a release ships only systemd's binfmt.d file, write that line instead.
    update-binfmts --enable qemu-aarch64 2>/dev/null || {
      conf=$(ls /usr/lib/binfmt.d/qemu-aarch64*.conf 2>/dev/null | head -n 1)
      [[ -n "$conf" ]] && grep -v '^#' "$conf" >/proc/sys/fs/binfmt_misc/register
    }
  fi
fi
builder_version=$("$BUILDER_PREFIX/usr/sbin/dockerd" --version | awk '{print $3}' | tr -d ,)
buildx_version=$("$BUILDER_PREFIX/usr/libexec/docker/cli-plugins/docker-buildx" version | awk '{print $2}')
echo "system-deps: ok (${packages[*]}; dockerd $builder_version + buildx $buildx_version in $BUILDER_PREFIX;" \
  "binfmt arm64 $( [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] && echo on || echo off))"
