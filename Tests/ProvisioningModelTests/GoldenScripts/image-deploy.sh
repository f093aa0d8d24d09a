#!/bin/sh
# Anvil task image-deploy for node-07 (0b1c5d2e-3f40-4a51-8b62-7c83d94ea5f6): streams the disk image at
# image-url onto the install disk, then tells Anvil. POSIX sh, busybox-compatible (the discovery
# image has only busybox: wget without TLS, gunzip, xz, sha256sum, dd).
#
# The image is streamed (it may not fit in RAM), so its SHA-256 is known only once it is written:
# a mismatch zeroes the disk's first MiB, so the machine cannot boot a corrupt image, and fails.
# image-sha256 is the checksum of the file as downloaded (the compressed file for raw.gz and raw.xz).
set -u

image_url='http://images.example/node.img'
image_sha256='9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
image_format='raw.xz'
disk='/dev/nvme0n1'
callback='http://10.0.0.1:8080/machines/0b1c5d2e-3f40-4a51-8b62-7c83d94ea5f6/installed?token=m1.test-token'

say() { echo "anvil-task image-deploy: $*"; }
fail() {
    echo "anvil-task image-deploy: error: $*" >&2
    exit 1
}

# The format: the param, else the file name's suffix.
if [ -z "$image_format" ]; then
    case "$image_url" in
    *.qcow2 | *.qcow2.*) image_format=qcow2 ;;
    *.gz) image_format=raw.gz ;;
    *.xz) image_format=raw.xz ;;
    *) image_format=raw ;;
    esac
fi
case "$image_format" in
raw) decompress="cat" ;;
raw.gz) decompress="gunzip -c" ;;
raw.xz) decompress="xz -d -c" ;;
qcow2) fail "image format qcow2 is not supported: convert it to raw (qemu-img convert -O raw IN OUT, then gzip or xz it if you like) and set image-format" ;;
*) fail "unknown image-format '$image_format' (expected raw, raw.gz or raw.xz)" ;;
esac
[ -b "$disk" ] || [ -f "$disk" ] || fail "install disk $disk does not exist (param install-disk)"
case "$image_sha256" in
"" | ????????????????????????????????????????????????????????????????) ;;
*) fail "image-sha256 must be 64 hexadecimal digits, not '$image_sha256'" ;;
esac
expected=$(printf '%s' "$image_sha256" | tr 'A-F' 'a-f')

# curl where the system has it (https; gives up after 60 s without data), else wget. busybox 1.35's
# wget crashes with -T, so `timeout` bounds it: 6 hours, a large image over a slow link.
if command -v curl >/dev/null 2>&1; then
    fetch() { curl -fsSL --connect-timeout 30 --speed-time 60 --speed-limit 1 "$image_url"; }
else
    fetch() { timeout 21600 wget -q -O - "$image_url"; }
fi

work=$(mktemp -d /tmp/anvil-image-deploy.XXXXXX) || fail "cannot create a work directory in /tmp"
trap 'rm -rf "$work"' EXIT
mkfifo "$work/tap" || fail "cannot create a fifo in $work"
sha256sum <"$work/tap" >"$work/sum" &
hasher=$!

say "writing $image_url ($image_format) to $disk"
# No pipefail in POSIX sh: each stage writes its exit status to a file.
{
    fetch
    echo $? >"$work/fetch.status"
} | tee "$work/tap" | {
    $decompress
    echo $? >"$work/decompress.status"
} | {
    dd of="$disk" bs=4M conv=fsync 2>"$work/dd.log"
    echo $? >"$work/dd.status"
}
wait "$hasher"

status_of() { cat "$work/$1.status" 2>/dev/null || echo unknown; }
[ "$(status_of fetch)" = 0 ] || fail "downloading $image_url failed (exit $(status_of fetch))"
[ "$(status_of decompress)" = 0 ] || fail "$image_url is not a valid $image_format image ($decompress exit $(status_of decompress))"
[ "$(status_of dd)" = 0 ] || fail "writing $disk failed: $(tr '\n' ' ' <"$work/dd.log")"
actual=$(cut -d' ' -f1 "$work/sum")
say "wrote $disk: $(tail -n 1 "$work/dd.log"); sha256 of the download $actual"
if [ -n "$expected" ] && [ "$actual" != "$expected" ]; then
    dd if=/dev/zero of="$disk" bs=1M count=1 conv=notrunc,fsync 2>/dev/null
    fail "sha256 mismatch for $image_url: got $actual, expected $expected (param image-sha256); zeroed the first MiB of $disk so it does not boot"
fi
sync
# A block device's partitions appear without a reboot; a regular file (tests) has none.
[ -b "$disk" ] && blockdev --rereadpt "$disk" 2>/dev/null

# The callback: Anvil's agent also reports this script's exit code, so a lost callback is a warning.
if command -v curl >/dev/null 2>&1; then
    curl -fsS -X POST -o /dev/null --max-time 30 "$callback"
else
    timeout 30 wget -q -O /dev/null --post-data '' "$callback"
fi || say "warning: could not tell Anvil the image is written ($callback)"
say "done"
exit 0
