#!/usr/bin/env bash
# Renders the application icon (hicolor/scalable SVG, our own drawing) into the PNG sizes desktop
# environments look up, next to it in assets/icons/hicolor. The PNGs are committed so building needs
# no SVG renderer; run this after changing the SVG (needs rsvg-convert, Debian package librsvg2-bin).
set -euo pipefail
cd "$(dirname "$0")/.."
app_id=io.github.gpen_studio.GpenStudio
svg=assets/icons/hicolor/scalable/apps/$app_id.svg
for size in 16 24 32 48 64 128 256 512; do
  dir=assets/icons/hicolor/${size}x${size}/apps
  mkdir -p "$dir"
  rsvg-convert --width "$size" --height "$size" --keep-aspect-ratio "$svg" --output "$dir/$app_id.png"
done
echo "rendered $(ls assets/icons/hicolor | wc -l) icon sizes from $svg"
