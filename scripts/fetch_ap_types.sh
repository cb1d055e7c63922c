#!/usr/bin/env bash
# Fetches the open-source Xilinx ap_types headers (ap_int.h, ap_fixed.h,
# hls_stream.h; Apache-2.0) that the hls4ml wheel on PyPI ships, so that the
# Vitis HLS C++ that `repopt hls` generates can be compiled and C-simulated
# with plain g++ on a machine without Vitis.
#
#   scripts/fetch_ap_types.sh            # installs into ${REPOPT_AP_TYPES:-$HOME/.cache/repopt/ap_types}
#   REPOPT_AP_TYPES=/some/dir scripts/fetch_ap_types.sh
#
# Idempotent: does nothing when the headers are already there. Only the
# header directory is unpacked from the wheel (nothing is installed).
set -euo pipefail

dest="${REPOPT_AP_TYPES:-$HOME/.cache/repopt/ap_types}"
if [[ -f "$dest/ap_int.h" && -f "$dest/hls_stream.h" ]]; then
    echo "ap_types headers already in $dest"
    exit 0
fi

cache="$(dirname "$dest")/wheels"
mkdir -p "$cache"
wheel="$(ls "$cache"/hls4ml-*.whl 2>/dev/null | head -n 1 || true)"
if [[ -z "$wheel" ]]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$cache" hls4ml
    wheel="$(ls "$cache"/hls4ml-*.whl | head -n 1)"
fi

# The headers sit in a folder named ap_types inside the wheel; find it by ap_int.h.
member="$(python3 - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
hits = sorted(n for n in names if n.endswith("/ap_types/ap_int.h"))
if not hits:
    sys.exit("no ap_types/ap_int.h in " + sys.argv[1])
print(hits[0][: -len("ap_int.h")])
PY
)"

tmp="$(mktemp -d "$(dirname "$dest")/.ap_types.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
python3 - "$wheel" "$member" "$tmp" <<'PY'
import os, sys, zipfile
wheel, prefix, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    for n in z.namelist():
        if n.startswith(prefix) and not n.endswith("/"):
            target = os.path.join(out, n[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(n) as src, open(target, "wb") as dst:
                dst.write(src.read())
PY
test -f "$tmp/ap_int.h" && test -f "$tmp/hls_stream.h"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "ap_types headers installed in $dest (from $(basename "$wheel"), ${member})"
