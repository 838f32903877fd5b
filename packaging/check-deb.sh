#!/usr/bin/env bash
# Checks the newest target/debian/gpen-studio_*.deb the way a user's machine would see it: dpkg
# installs it (into a private root, so `make test` never changes the system; dependencies are checked
# against this system's real package database), then the installed binary must resolve libtorch and
# the CUDA libraries from the package alone, find its bundled face-detector weights, and restore the
# faces of a real photo. Fails on the first mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."

deb=$(ls -t target/debian/gpen-studio_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "no package in target/debian: run \`make deb\`" >&2; exit 1; }
fail() { echo "check-deb: FAILED: $*" >&2; exit 1; }
echo "checking $deb ($(du -h "$deb" | cut -f1))"

# Control fields and the files a desktop needs.
info=$(dpkg-deb --field "$deb" Package Architecture Depends Section)
grep -q '^Package: gpen-studio$' <<<"$info" || fail "package name: $info"
grep -q '^Architecture: amd64$' <<<"$info" || fail "architecture: $info"
contents=$(dpkg-deb --contents "$deb" | awk '{print $6}')
for path in ./usr/bin/gpen-studio \
            ./usr/share/applications/io.github.gpen_studio.GpenStudio.desktop \
            ./usr/share/icons/hicolor/scalable/apps/io.github.gpen_studio.GpenStudio.svg \
            ./usr/share/icons/hicolor/256x256/apps/io.github.gpen_studio.GpenStudio.png \
            ./usr/share/gpen-studio/mtcnn/pnet.pt \
            ./usr/lib/gpen-studio/torch/lib/libtorch_cuda.so \
            ./usr/lib/gpen-studio/nvidia/cudnn/lib/libcudnn.so.9 \
            ./usr/share/doc/gpen-studio/copyright; do
  grep -qxF "$path" <<<"$contents" || fail "$path is not in the package"
done
if grep -q 'libtorch_python\|\.libtorch' <<<"$contents"; then fail "build-tree or Python files packaged"; fi

# Install with dpkg into a private root that knows this system's installed packages.
root=$(mktemp -d "${TMPDIR:-/tmp}/gpen-studio-deb.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
cp /var/lib/dpkg/status "$root/var/lib/dpkg/status"
# (The private root has the package list but not each package's file list; dpkg warns once per package.)
dpkg --root="$root" --force-not-root --force-script-chrootless --log=/dev/null --install "$deb" \
  2> >(grep -v 'files list file for package' >&2) \
  || fail "dpkg could not install it (dependencies are listed above)"
dpkg --root="$root" --force-not-root --status gpen-studio | grep -q '^Status: install ok installed' || fail "not installed"
exe=$root/usr/bin/gpen-studio

# Only the package's own, relative rpath; every library resolves inside the package or the system.
runpath=$(readelf -d "$exe" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
[ "$runpath" = '$ORIGIN/../lib/gpen-studio/torch/lib' ] || fail "RUNPATH is '$runpath'"
clean_env=(env -i PATH=/usr/bin:/bin HOME="$root/home" XDG_DATA_HOME="$root/home/data" XDG_CONFIG_HOME="$root/home/config")
libs=$("${clean_env[@]}" ldd "$exe")
grep -q 'not found' <<<"$libs" && fail "unresolved libraries: $(grep 'not found' <<<"$libs")"
grep -q "libtorch_cpu.so => $root/usr/bin/../lib/gpen-studio/torch/lib/" <<<"$libs" || fail "libtorch not from the package: $libs"
cuda_libs=$("${clean_env[@]}" ldd "$root/usr/lib/gpen-studio/torch/lib/libtorch_cuda.so")
grep -q 'not found' <<<"$cuda_libs" && fail "libtorch_cuda cannot resolve: $(grep 'not found' <<<"$cuda_libs")"
grep -q "libcudnn.so.9 => $root/usr/lib/gpen-studio/torch/lib/../../nvidia/cudnn/lib/" <<<"$cuda_libs" || fail "cuDNN not from the package"

desktop-file-validate "$root/usr/share/applications/io.github.gpen_studio.GpenStudio.desktop" \
  || fail "the .desktop file does not validate"

# Run it from an unrelated folder, with nothing from the build tree in its environment.
work=$root/work && mkdir -p "$work" && cd "$work"
"${clean_env[@]}" "$exe" --version
models=$("${clean_env[@]}" "$exe" models list)
grep -qF "face detector (MTCNN) weights: $root/usr/share/gpen-studio/mtcnn ready" <<<"$models" \
  || fail "the bundled MTCNN weights were not found: $models"
photos=$OLDPWD/../shared/photos
golden=$OLDPWD/../shared/golden
"${clean_env[@]}" "$exe" detect --device cpu "$photos/astronaut.png" | tee detect.txt
grep -q '1 face' detect.txt || fail "expected one face in astronaut.png"
"${clean_env[@]}" "$exe" restore --device cpu --weights "$golden/gpen-64/weights.pth" "$photos/astronaut.png" -o out 2>&1 | tee restore.txt
grep -q 'faces restored 1, failed 0' restore.txt || fail "restore through the installed binary"
[ -s out/astronaut.png ] || fail "no restored photo written"
echo "check-deb: OK (installed with dpkg, libraries from the package, face restored)"
