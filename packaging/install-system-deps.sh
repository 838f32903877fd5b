#!/usr/bin/env bash
# Installs the Debian packages gpen-studio needs to build and run, when any is missing.
# Build: a C++ compiler (the allocator shim, torch-sys glue), Python 3 with pip (fetches libtorch).
set -euo pipefail

missing=()
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust 1.95+) is required: https://rustup.rs" >&2; exit 1; }

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
