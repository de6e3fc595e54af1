#!/usr/bin/env bash
# Download torchvision's official ImageNet-1k ConvNeXt weights and convert
# them for cnx. Needs internet access. See usage below.
set -euo pipefail

prog=fetch_weights.sh
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${CNX_PYTHON:-/usr/bin/python3}"
base_url=https://download.pytorch.org/models

usage() {
    cat <<EOF
usage: $prog [tiny|small|base|large] [OUTDIR]

Downloads torchvision's official ConvNeXt ImageNet-1k weights
(IMAGENET1K_V1) and converts them with convert_weights.py into
OUTDIR/convnext_VARIANT.safetensors, which carries torchvision's
preprocessing (resize, crop, mean, std) in its metadata.

  VARIANT  tiny (default), small, base or large
  OUTDIR   where to put the .pth and the .safetensors (default: .)

This needs internet access to download.pytorch.org; machines without it
(such as this project's build and CI machines) cannot run it. The
download is checked against the SHA-256 prefix in its file name
(e.g. convnext_tiny-983f1562.pth) before it is converted. A .pth already
in OUTDIR with the right checksum is not downloaded again.

Environment: CNX_PYTHON, the Python with torch and torchvision
(default /usr/bin/python3).

Exit status: 0 on success, 1 if the download or the check failed,
2 on a usage error or a failed conversion.
EOF
}

die() { echo "$prog: error: $1" >&2; exit "${2:-2}"; }

variant=tiny
outdir=.
positional=()
for arg in "$@"; do
    case "$arg" in
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option '$arg' (see --help)" ;;
        *) positional+=("$arg") ;;
    esac
done
if [ "${#positional[@]}" -gt 2 ]; then
    die "too many arguments (see --help)"
fi
[ "${#positional[@]}" -ge 1 ] && variant="${positional[0]}"
[ "${#positional[@]}" -ge 2 ] && outdir="${positional[1]}"

# File names as torchvision.models.convnext lists them; the 8 hex digits are
# the start of each file's SHA-256.
case "$variant" in
    tiny)  file=convnext_tiny-983f1562.pth ;;
    small) file=convnext_small-0c510722.pth ;;
    base)  file=convnext_base-6075fbad.pth ;;
    large) file=convnext_large-ea097f82.pth ;;
    *) die "unknown variant '$variant': expected tiny, small, base or large" ;;
esac
url="$base_url/$file"
prefix="${file%.pth}"
prefix="${prefix##*-}"
output="$outdir/convnext_$variant.safetensors"

mkdir -p -- "$outdir" 2>/dev/null || die "$outdir: cannot create the folder"
if [ ! -d "$outdir" ] || [ ! -w "$outdir" ]; then die "$outdir: not a writable folder"; fi
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
[ -x "$python" ] || command -v "$python" >/dev/null || die "$python not found; set CNX_PYTHON"

checksum_ok() {
    local sum
    sum="$(sha256sum -- "$1" | cut -c1-${#prefix})"
    [ "$sum" = "$prefix" ]
}

pth="$outdir/$file"
if [ -f "$pth" ] && checksum_ok "$pth"; then
    echo "$prog: $pth already downloaded and verified" >&2
else
    part="$pth.part"
    echo "$prog: downloading $url" >&2
    if command -v curl >/dev/null; then
        fetch=(curl -fL --retry 2 --connect-timeout 20 -o "$part" -- "$url")
    elif command -v wget >/dev/null; then
        fetch=(wget -O "$part" -- "$url")
    else
        die "neither curl nor wget is installed" 1
    fi
    if ! "${fetch[@]}"; then
        rm -f -- "$part"
        die "could not download $url: this script needs internet access (download.pytorch.org)" 1
    fi
    if ! checksum_ok "$part"; then
        got="$(sha256sum -- "$part" | cut -c1-16)"
        rm -f -- "$part"
        die "$file: SHA-256 starts $got, expected $prefix: download corrupt or tampered with" 1
    fi
    mv -f -- "$part" "$pth"
fi

"$python" "$here/convert_weights.py" "$pth" "$output" --arch "convnext_$variant" \
    --source "torchvision $url (IMAGENET1K_V1)" || exit 2
echo "$prog: done: $output" >&2
