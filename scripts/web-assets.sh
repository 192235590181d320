#!/usr/bin/env bash
# Install the console's charting library (uPlot) from the npm registry into labs/web/static/vendor/.
# The directory is gitignored: no third-party code is committed and no CDN is used at run time; the console
# serves these files itself. Idempotent: does nothing when the pinned version is already in place.
# The tarball's sha512 is checked against the pinned integrity, so a changed upstream file is refused.
set -euo pipefail
cd "$(dirname "$0")/.."

UPLOT_VERSION=1.6.32
UPLOT_INTEGRITY='sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=='
DEST=labs/web/static/vendor/uplot
STAMP=$DEST/.version

say() { printf 'web-assets: %s\n' "$*" >&2; }

if [ "$(cat "$STAMP" 2>/dev/null)" = "$UPLOT_VERSION" ] && [ -s "$DEST/uPlot.iife.min.js" ] && [ -s "$DEST/uPlot.min.css" ]; then
  say "uPlot $UPLOT_VERSION: present"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  say "npm is not installed (setup installs nodejs + npm as root); the console's charts need uPlot"
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "fetching uplot@$UPLOT_VERSION from the npm registry"
(cd "$tmp" && npm pack "uplot@$UPLOT_VERSION" --silent >/dev/null 2>npm.err) || { cat "$tmp/npm.err" >&2; exit 1; }
tgz="$tmp/uplot-$UPLOT_VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$got" != "$UPLOT_INTEGRITY" ]; then
  say "integrity mismatch for uplot-$UPLOT_VERSION.tgz: got $got"
  exit 1
fi
tar -xzf "$tgz" -C "$tmp" package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE
mkdir -p "$DEST"
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$DEST/"
cp "$tmp/package/LICENSE" "$DEST/LICENSE"
echo "$UPLOT_VERSION" > "$STAMP"
say "uPlot $UPLOT_VERSION installed in $DEST"
