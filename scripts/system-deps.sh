#!/usr/bin/env bash
# Install and enable what Slipway's local parts need from Debian: dockerd with BuildKit, an OCI registry,
# QEMU for the non-native platform, debootstrap for air-gapped bases. Idempotent; root only.
set -euo pipefail

packages=(docker.io docker-registry qemu-user-static binfmt-support debootstrap)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# busybox-static for arm64 seeds the local base image: the foreign architecture must be known to apt.
foreign=$(dpkg --print-foreign-architectures)
[[ " $foreign " == *" arm64 "* ]] || needs_arch=1

if [[ ${#missing[@]} -gt 0 || -n "${needs_arch:-}" ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "system-deps: missing ${missing[*]:-}${needs_arch:+ (and dpkg architecture arm64)}; run 'make deps' as root" >&2
    exit 2
  fi
  [[ -n "${needs_arch:-}" ]] && dpkg --add-architecture arm64
  apt-get update -qq
  if [[ ${#missing[@]} -gt 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# Containers do not mount binfmt_misc by default; QEMU registers arm64 only once it is.
if [[ $(id -u) -eq 0 ]]; then
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || update-binfmts --enable qemu-aarch64
fi
echo "system-deps: ok (${packages[*]}; binfmt arm64 $( [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] && echo on || echo off))"
