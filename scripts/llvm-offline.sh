#!/usr/bin/env bash
# Lets the `cuda` backend build without network access.
#
# Burn 0.22's CUDA backend compiles its kernels through LLVM (cubecl-llvm), and the crate
# `tracel-llvm-bundler` downloads a prebuilt LLVM 23 from GitHub in its build script. Where that
# download is not possible, Debian's LLVM 22 (llvm-22-dev, with Polly's static library) can stand
# in: the bundler skips the download when its cache directory is marked as installed, and then
# asks `<cache>/bin/llvm-config` for compiler and linker flags. This script installs the Debian
# packages (apt, when missing), writes that directory with an `llvm-config` that forwards to
# Debian's, and prints the XDG_DATA_HOME to build with:
#
#   XDG_DATA_HOME="$(scripts/llvm-offline.sh)" cargo xtask train --backend cuda …
#
# The directory defaults to ~/.cache/ela/llvm-offline (first argument to change it). LLVM 22 is
# not the LLVM the bundler was made for; with network access, prefer the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${1:-$HOME/.cache/ela/llvm-offline}"
llvm=/usr/lib/llvm-22

version="$(awk '/^name = "tracel-llvm-bundler"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ -z "$version" ]; then
  echo "scripts/llvm-offline.sh: Cargo.lock has no tracel-llvm-bundler; nothing to do" >&2
  exit 1
fi

if [ ! -x "$llvm/bin/llvm-config" ] || [ ! -e "$llvm/lib/libPolly.a" ] \
  || [ ! -e /usr/include/zstd.h ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/llvm-offline.sh: needs LLVM 22 with static libraries and Polly in $llvm" \
      "(Debian/Ubuntu: llvm-22-dev libpolly-22-dev libzstd-dev)" >&2
    exit 1
  fi
  {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends llvm-22-dev libpolly-22-dev libzstd-dev
  } >&2
fi

# The bundler's cache: $XDG_DATA_HOME/tracel/tracel-llvm-<version>, marked as installed.
cache="$dir/tracel/tracel-llvm-$version"
# Written only when missing or different: the bundler's build script reruns when the marker
# changes, and everything built on LLVM after it.
mkdir -p "$cache/bin"
wrapper="$(cat <<WRAPPER
#!/bin/sh
# Debian's llvm-config, with absolute library paths (/usr/lib/…/libz3.so) turned into -l flags,
# the form the bundler passes on to the linker.
$llvm/bin/llvm-config "\$@" | sed -E 's#/[^ ]*/lib([A-Za-z0-9_+-]+)\\.so#-l\\1#g'
WRAPPER
)"
if [ "$(cat "$cache/bin/llvm-config" 2>/dev/null)" != "$wrapper" ]; then
  printf '%s\n' "$wrapper" >"$cache/bin/llvm-config.tmp"
  chmod +x "$cache/bin/llvm-config.tmp"
  mv "$cache/bin/llvm-config.tmp" "$cache/bin/llvm-config"
fi
[ -e "$cache/.tracel-llvm-installed" ] || touch "$cache/.tracel-llvm-installed"
echo "$dir"
