#!/usr/bin/env bash
# Installs the Debian packages gpen-studio needs to build and run, when any is missing.
# Build: a C++ compiler (the allocator shim, torch-sys glue), Python 3 with pip (fetches libtorch),
# CMake and NASM (libjpeg-turbo, the JPEG decoder, is built from the turbojpeg crate's bundled
# sources with its SIMD code and linked statically: the decoder OpenCV uses, the same on every
# machine, and no library for the package to depend on); libde265 and dav1d, the HEVC and AV1
# decoders that libheif (HEIC and AVIF photos, built from the libheif-sys crate's sources) uses.
# With --gui, also the libraries the desktop window loads at run time (winit and glutin dlopen them,
# so building and the headless tests need none of them): X11/Wayland clients, xkbcommon, EGL/GL with
# Mesa's drivers, and D-Bus for the file dialogs. With --package, the tools packaging/build-deb.sh
# uses. Only missing packages are installed (dpkg -s).
# With --test, Slurm and MUNGE (slurm-wlm, munge) for `make test` only: tests/cluster_slurm/ starts its
# own single-node cluster on loopback from the programs alone, so the packages' own daemons are never
# started (a policy-rc.d refuses them while apt installs) and no system configuration is needed; and
# Chromium, in which tests/report_sheet.rs opens the review sheet headless.
set -euo pipefail

missing=()
if [ "${1:-}" = "--package" ]; then
  # `make deb`: rewriting the binary's rpath, stripping it, checking the .desktop file.
  for pkg in patchelf binutils desktop-file-utils; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
elif [ "${1:-}" = "--test" ]; then
  for pkg in slurm-wlm munge chromium; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
elif [ "${1:-}" = "--gui" ]; then
  if ! command -v dpkg >/dev/null 2>&1; then
    echo "not a Debian system: install the X11/Wayland, xkbcommon and EGL/OpenGL runtime libraries yourself" >&2
    exit 0
  fi
  for pkg in libxkbcommon0 libxkbcommon-x11-0 libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6 \
             libwayland-client0 libwayland-cursor0 libwayland-egl1 libegl1 libgl1 libgl1-mesa-dri libdbus-1-3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
else
  command -v c++ >/dev/null 2>&1 || missing+=(g++)
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v nasm >/dev/null 2>&1 || missing+=(nasm)
  # libheif (HEIC, AVIF) is built from its crate's sources; its decoders are these libraries.
  for pkg in libde265-dev libdav1d-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
  command -v cargo >/dev/null 2>&1 || { echo "cargo (Rust 1.95+) is required: https://rustup.rs" >&2; exit 1; }
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# Installing must not leave daemons running (munged, slurmctld with the packages' defaults): unless
# the system already has a policy-rc.d (containers usually do), one that refuses every start is put
# in place for the install and removed afterwards.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# gpen-studio set-up: no service starts while packages install\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
