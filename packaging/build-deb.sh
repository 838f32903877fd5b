#!/usr/bin/env bash
# Builds target/debian/gpen-studio_<version>-1_amd64.deb from the release binary (`make deb` builds
# it first). The [package.metadata.deb] section of Cargo.toml maps what this script stages in
# target/deb-root into the package:
#   gpen-studio        the binary, debug info stripped, rpath rewritten to only
#                      $ORIGIN/../lib/gpen-studio/torch/lib (the build links against .libtorch/ by an
#                      absolute path that must not leak into the package)
#   lib/torch/lib      libtorch from the torch 2.13.0 wheel, without its Python bindings
#   lib/nvidia/*/lib   the CUDA 13 runtime wheels' libraries, where libtorch's own relative rpaths
#                      ($ORIGIN/../../nvidia/<part>/lib) look for them
#   licenses/          the licence files of every bundled wheel
#   completions/       bash, zsh and fish completions and man/ the man pages (gzipped), generated
#                      by the binary itself from its clap definitions
# Libraries are hard-linked when the filesystem allows, so staging costs no disk space.
# Compression is the system's gzip -1 (`--fast --compress-system`): 89 s for the 3.6 GB staged here
# (2.4 GB package) on two cores, where cargo-deb's built-in gzip (zopfli) took 49 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
site=.libtorch/site
root=target/deb-root
target_dir=${CARGO_TARGET_DIR:-target}
bin=$target_dir/release/gpen-studio

[ -x "$bin" ] || { echo "no release binary at $bin: run \`make deb\` (or cargo build --release first)" >&2; exit 1; }
[ -d "$site/torch/lib" ] || { echo "no libtorch in $site: run \`make setup\` first" >&2; exit 1; }
for tool in patchelf strip dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run packaging/install-system-deps.sh --package" >&2; exit 1; }
done

# cargo-deb, pinned, in a project-local ignored folder (like libtorch), built once (~1 min).
tools=.tools
if [ "$("$tools/bin/cargo-deb" --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DEB_VERSION" ]; then
  echo "installing cargo-deb $CARGO_DEB_VERSION into $tools/"
  cargo install --quiet --locked --root "$tools" cargo-deb --version "$CARGO_DEB_VERSION"
fi

link_or_copy() { cp -l "$1" "$2" 2>/dev/null || cp "$1" "$2"; }

rm -rf "$root"
mkdir -p "$root/lib/torch/lib" "$root/licenses"
cp "$bin" "$root/gpen-studio"
strip --strip-debug "$root/gpen-studio"
patchelf --set-rpath '$ORIGIN/../lib/gpen-studio/torch/lib' "$root/gpen-studio"

# Completions and man pages from the command-line definitions, so they match this binary.
mkdir -p "$root/completions" "$root/man"
"$bin" completions bash >"$root/completions/gpen-studio"
"$bin" completions zsh >"$root/completions/_gpen-studio"
"$bin" completions fish >"$root/completions/gpen-studio.fish"
"$bin" man --dir "$root/man"
gzip -9n "$root"/man/*.1

for lib in "$site"/torch/lib/*.so*; do
  case "$(basename "$lib")" in
    libtorch_python.so|libshm.so) continue ;;  # Python bindings and their shared-memory helper
  esac
  link_or_copy "$lib" "$root/lib/torch/lib/"
done
for dir in "$site"/nvidia/*/lib; do
  part=$(basename "$(dirname "$dir")")
  mkdir -p "$root/lib/nvidia/$part/lib"
  for lib in "$dir"/*.so*; do link_or_copy "$lib" "$root/lib/nvidia/$part/lib/"; done
done
for info in "$site"/torch-*.dist-info "$site"/nvidia_*.dist-info; do
  name=$(basename "$info" .dist-info)
  if [ -d "$info/licenses" ]; then
    mkdir -p "$root/licenses/$name" && cp -r "$info/licenses/." "$root/licenses/$name/"
  else
    for f in "$info"/LICEN[CS]E* "$info"/License*; do
      [ -f "$f" ] && mkdir -p "$root/licenses/$name" && cp "$f" "$root/licenses/$name/"
    done
  fi
done
find "$site/nvidia" -maxdepth 2 -iname 'LICENSE*' | while read -r f; do
  part=$(basename "$(dirname "$f")")
  mkdir -p "$root/licenses/nvidia-$part" && cp "$f" "$root/licenses/nvidia-$part/"
done

echo "staged $(du -sh --apparent-size "$root" | cut -f1) in $root; building the package"
start=$SECONDS
PATH="$PWD/$tools/bin:$PATH" cargo deb --no-build --no-strip --fast --compress-type gzip --compress-system --output target/debian/
deb=$(ls -t target/debian/gpen-studio_*.deb | head -1)
echo "built $deb ($(du -h "$deb" | cut -f1)) in $((SECONDS - start)) s"
