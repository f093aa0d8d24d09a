#!/bin/sh
# Anvil task wipe-disks for node-07: erase partition tables and signatures on the local
# disks, so the next install starts from a blank machine. Runs in the discovery image (busybox; no
# mounted disks). POSIX sh.
#
# wipe-mode quick: wipefs where installed, blkdiscard where the device supports it, and zeroes
#   the first and last wipe-megabytes MiB of each disk (MBR, GPT and its backup, RAID and LVM
#   metadata at either end) and the first of each partition (file system signatures).
# wipe-mode full: the same, then every byte zeroed (hours on a large disk).
# Never touched: removable, read-only and mounted disks (the boot media: a USB stick or virtual CD),
# and loop, RAM, optical, network and virtual (dm, md) devices.
# For tests: ANVIL_SYSROOT prefixes /sys, /proc and /dev, as for the agent.
set -u
root=${ANVIL_SYSROOT:-}

mode='quick'
megabytes='64'
disks=''

say() { echo "anvil-task wipe-disks: $*"; }
fail() {
    echo "anvil-task wipe-disks: error: $*" >&2
    exit 1
}

case "$mode" in quick | full) ;; *) fail "unknown wipe-mode '$mode' (expected quick or full)" ;; esac
case "$megabytes" in '' | *[!0-9]*) fail "wipe-megabytes must be a whole number, not '$megabytes'" ;; esac
[ "$megabytes" -ge 1 ] || fail "wipe-megabytes must be at least 1"

# The local disks, when none are named.
if [ -z "$disks" ]; then
    for dir in "$root"/sys/block/*; do
        [ -e "$dir/size" ] || continue
        name=${dir##*/}
        case "$name" in loop* | ram* | zram* | sr* | fd* | nbd* | dm-* | md*) continue ;; esac
        [ "$(cat "$dir/removable" 2>/dev/null || echo 0)" = 1 ] && say "skipping /dev/$name: removable" && continue
        [ "$(cat "$dir/ro" 2>/dev/null || echo 0)" = 1 ] && say "skipping /dev/$name: read-only" && continue
        if grep -Eq "^/dev/${name}(p?[0-9]+)? " "$root/proc/mounts" 2>/dev/null; then
            say "skipping /dev/$name: mounted (boot media?)"
            continue
        fi
        disks="$disks$root/dev/$name "
    done
fi
[ -n "$disks" ] || { say "no local disks to wipe"; exit 0; }

size_of() { if [ -b "$1" ]; then blockdev --getsize64 "$1"; else stat -L -c %s "$1"; fi; }

# Zeroes COUNT 512-byte sectors of DISK from sector START, never past its end.
zero_sectors() {
    [ "$3" -gt 0 ] || return 0
    dd if=/dev/zero of="$1" bs=512 seek="$2" count="$3" conv=notrunc,fsync 2>/dev/null
}

failed=0
for disk in $disks; do
    if [ ! -b "$disk" ] && [ ! -f "$disk" ]; then
        say "error: $disk does not exist" >&2
        failed=1
        continue
    fi
    size=$(size_of "$disk") || size=""
    case "$size" in '' | *[!0-9]*)
        say "error: cannot read the size of $disk" >&2
        failed=1
        continue
        ;;
    esac
    sectors=$((size / 512))
    area=$((megabytes * 2048))
    [ "$area" -gt "$sectors" ] && area=$sectors
    say "wiping $disk ($size bytes, $mode)"
    if command -v wipefs >/dev/null 2>&1; then
        for part in "$disk"?*; do [ -b "$part" ] && wipefs --all --force "$part" >/dev/null 2>&1; done
        wipefs --all --force "$disk" >/dev/null 2>&1
    fi
    if [ -b "$disk" ]; then
        # util-linux's blkdiscard wants -f on a disk with signatures; busybox's has no -f.
        if blkdiscard -f "$disk" 2>/dev/null || blkdiscard "$disk" 2>/dev/null; then
            say "discarded $disk"
        fi
        # Each partition's start, through the whole disk (the start is in 512-byte sectors).
        name=${disk##*/}
        for start in "$root"/sys/block/"$name"/"$name"*/start; do
            [ -r "$start" ] && zero_sectors "$disk" "$(cat "$start")" 2048
        done
    fi
    ok=1
    zero_sectors "$disk" 0 "$area" || ok=0
    zero_sectors "$disk" $((sectors - area)) "$area" || ok=0
    if [ "$mode" = full ]; then
        # count= bounds dd: a regular file would otherwise grow forever.
        dd if=/dev/zero of="$disk" bs=1M count=$((size / 1048576)) conv=notrunc,fsync 2>/dev/null || ok=0
        tail_start=$(((size / 1048576) * 2048))
        zero_sectors "$disk" "$tail_start" $((sectors - tail_start)) || ok=0
    fi
    if [ "$ok" = 1 ]; then
        say "wiped $disk"
    else
        say "error: zeroing $disk failed" >&2
        failed=1
    fi
    [ -b "$disk" ] && blockdev --rereadpt "$disk" 2>/dev/null
done
sync
[ "$failed" = 0 ] || fail "some disks were not wiped (see above)"
say "done"
