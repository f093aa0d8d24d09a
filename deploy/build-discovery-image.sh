#!/usr/bin/env bash
# Builds Anvil's discovery image (kernel + one gzip cpio initrd) from Debian packages only:
# `apt-get download` + `dpkg -x` into a cache, no other network. The output is what
# bootenvs/discovery.yaml names: OUT/discovery/amd64/{vmlinuz,initrd.gz}.
#   deploy/build-discovery-image.sh [--force] [OUT]
#   OUT defaults to <repo>/.build-discovery/boot-files; the package cache is <repo>/.build-discovery/cache.
# Skips the build when this script, the init, the udhcpc script and the package versions are
# unchanged (a stamp next to the output); --force rebuilds. The same inputs give the same bytes
# (fixed mtimes, sorted cpio, gzip -n).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
force=false
[ "${1:-}" = "--force" ] && { force=true; shift; }
out=${1:-$repo/.build-discovery/boot-files}
cache=${ANVIL_DISCOVERY_CACHE:-$repo/.build-discovery/cache}
image_sources=$repo/deploy/discovery-image
target=$out/discovery/amd64
# Fixed timestamp for every file in the cpio: reproducible bytes.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
# Size goal in MiB for the initrd; the build fails above it.
size_goal_mib=64

# Kernel modules a real server needs (NICs, storage, IPMI); their dependencies are added from modules.dep.
modules=(virtio_net virtio_blk virtio_pci virtio_scsi e1000 e1000e igb ixgbe i40e ice mlx5_core bnxt_en tg3
    ahci nvme megaraid_sas mpt3sas sd_mod ipmi_si ipmi_devintf af_packet)
# Inventory tools: binary path inside its package, then the package. Their shared libraries come
# from the Debian packages listed in lib_packages (what ldd asks for), never from the host.
tools=(usr/sbin/dmidecode:dmidecode sbin/ethtool:ethtool usr/bin/ipmitool:ipmitool usr/sbin/nvme:nvme-cli
    usr/sbin/smartctl:smartmontools)

# One build at a time per cache (tests and setup may start it concurrently; a second caller waits
# and then finds the stamp current).
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
for command in apt-get apt-cache dpkg cpio gzip sha256sum flock; do
    command -v "$command" >/dev/null || { echo "build-discovery-image: $command is missing (deploy/setup.sh installs it)" >&2; exit 1; }
done

# The kernel metapackage names the real (versioned) image package.
kernel_package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kernel_package" ] || { echo "build-discovery-image: apt knows no linux-image-amd64 (apt-get update?)" >&2; exit 1; }
tool_packages=()
for tool in "${tools[@]}"; do tool_packages+=("${tool#*:}"); done
# The tools' library packages, recursively (ldd checks the result below: a library found only on
# the host fails the build).
lib_packages=()
while read -r dependency; do lib_packages+=("$dependency"); done < <(apt-cache depends --recurse --important "${tool_packages[@]}" 2>/dev/null |
    awk '/^ *(Pre)?Depends: (lib|zlib1g)/ { print $2 }' | grep -v '[<>]' | sort -u)
lib_packages+=(libc6 libgcc-s1)
mapfile -t all_packages < <(printf '%s\n' busybox-static "$kernel_package" "${tool_packages[@]}" "${lib_packages[@]}" | sort -u)

# What the image is made of: the versions apt would download now, plus our own sources.
versions=$(for package in "${all_packages[@]}"; do
    printf '%s=%s\n' "$package" "$(apt-cache policy "$package" | awk '/Candidate:/ { print $2 }')"; done)
stamp_value=$( { cat "$0" "$image_sources"/*; echo "$versions"; } | sha256sum | cut -d' ' -f1)
stamp=$target/.stamp
if ! $force && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_value" ] && [ -f "$target/vmlinuz" ] && [ -f "$target/initrd.gz" ]; then
    echo "build-discovery-image: up to date ($target, initrd $(du -k "$target/initrd.gz" | cut -f1) KiB)"
    exit 0
fi

# Download (cached by file name, which carries the version) and unpack everything into one tree.
mkdir -p "$cache/debs"
(cd "$cache/debs" && for line in $versions; do
    package=${line%%=*} version=${line#*=}
    ls "${package}_"*.deb >/dev/null 2>&1 && [ -n "$(ls "${package}_${version//:/%3a}_"*.deb 2>/dev/null)" ] && continue
    rm -f "${package}_"*.deb
    # Downloads as root into our cache (the _apt sandbox user cannot write here).
    apt-get download -qq -o APT::Sandbox::User=root "$package=$version"
done)
root=$cache/root
rm -rf "$root" && mkdir -p "$root"  # fresh each build: old package versions must not linger
for deb in "$cache"/debs/*.deb; do dpkg -x "$deb" "$root"; done
kernel_version=${kernel_package#linux-image-}
[ -f "$root/boot/vmlinuz-$kernel_version" ] || { echo "build-discovery-image: no kernel in $kernel_package" >&2; exit 1; }
busybox=$root/bin/busybox
# Module dependencies of the full module tree, to pick only what the listed modules need.
[ -s "$root/lib/modules/$kernel_version/modules.dep" ] || "$busybox" depmod -b "$root" "$kernel_version"

# The initrd tree.
staging=$cache/initrd
rm -rf "$staging"
mkdir -p "$staging"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,lib64,usr/share/udhcpc}
cp "$busybox" "$staging/bin/busybox"
# One link per applet, so /init and the agent can call `wget`, `ip`, `udhcpc` by name.
for applet in $("$busybox" --list-full); do
    [ -e "$staging/$applet" ] || ln -s /bin/busybox "$staging/$applet"
done
install -m 0755 "$image_sources/init" "$staging/init"
install -m 0755 "$image_sources/udhcpc.script" "$staging/usr/share/udhcpc/default.script"

# Modules: the closure over modules.dep (lines are "path: dep dep ...").
module_root=lib/modules/$kernel_version
mkdir -p "$staging/$module_root"
# The file of a module name in a modules.dep-like list (names use - and _ alike, files may be compressed).
module_path() {
    awk -F: -v m="${1//-/_}" '{ n = split($1, parts, "/"); base = parts[n]; sub(/\.ko(\.xz|\.zst|\.gz)?$/, "", base)
        gsub("-", "_", base); if (base == m) { print $1; exit } }' "$2"
}
declare -A seen=()
queue=()
for module in "${modules[@]}"; do
    # Module file names use either - or _; find the listed name's file.
    path=$(module_path "$module" "$root/$module_root/modules.dep")
    if [ -z "$path" ]; then
        # Built into the kernel (then there is nothing to copy) or unknown.
        [ -n "$(module_path "$module" "$root/$module_root/modules.builtin")" ] ||
            { echo "build-discovery-image: module $module not found" >&2; exit 1; }
        continue
    fi
    queue+=("$path")
done
while [ "${#queue[@]}" -gt 0 ]; do
    path=${queue[0]}
    queue=("${queue[@]:1}")
    [ -n "${seen[$path]:-}" ] && continue
    seen[$path]=1
    mkdir -p "$staging/$module_root/$(dirname "$path")"
    cp "$root/$module_root/$path" "$staging/$module_root/$path"
    for dependency in $(awk -F: -v p="$path" '$1 == p { print $2; exit }' "$root/$module_root/modules.dep"); do
        queue+=("$dependency")
    done
done
cp "$root/$module_root"/modules.builtin* "$staging/$module_root/" 2>/dev/null || true
"$busybox" depmod -b "$staging" "$kernel_version"

# Tools and the shared libraries ldd lists, resolved inside the unpacked packages (not the host).
library_path=$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu
skipped=()
for tool in "${tools[@]}"; do
    binary=${tool%%:*}
    [ -f "$root/$binary" ] || { skipped+=("${tool#*:} (no $binary)"); continue; }
    needed=$(LD_LIBRARY_PATH=$library_path ldd "$root/$binary" 2>&1) || true
    if grep -q "not found" <<<"$needed"; then skipped+=("${tool#*:} ($(grep "not found" <<<"$needed" | awk '{ print $1 }' | tr '\n' ' '))"); continue; fi
    install -D -m 0755 "$root/$binary" "$staging/$binary"
    # Lines: "libx.so.1 => /path/libx.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)".
    for library in $(awk '/=>/ { print $3 } !/=>/ && $1 ~ /^\// { print $1 }' <<<"$needed"); do
        case $library in
            "$root"/*) relative=${library#"$root"/} ;;
            /lib64/*) relative=${library#/} ; library=$root/lib/x86_64-linux-gnu/$(basename "$library") ;;
            *) echo "build-discovery-image: $binary needs $library from outside the packages" >&2; exit 1 ;;
        esac
        # usr-merge: the runtime looks in /lib and /usr/lib; keep the package's own path.
        [ -e "$staging/$relative" ] || install -D -m 0644 "$(readlink -f "$library")" "$staging/$relative"
    done
done
# The dynamic loader is looked up at /lib64; the library search path covers both lib directories.
printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' >"$staging/etc/ld.so.conf"
# Without an ld.so.cache the loader only searches the default paths, which include both.

# Pack: sorted names, fixed mtimes, numeric owners root, gzip without name/time.
find "$staging" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$target"
(cd "$staging" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -9 >"$target/initrd.gz.new"
cp "$root/boot/vmlinuz-$kernel_version" "$target/vmlinuz.new"
mv "$target/vmlinuz.new" "$target/vmlinuz"
mv "$target/initrd.gz.new" "$target/initrd.gz"
size_kib=$(du -k "$target/initrd.gz" | cut -f1)
[ "$size_kib" -le $((size_goal_mib * 1024)) ] || { echo "build-discovery-image: initrd is $size_kib KiB, over the ${size_goal_mib} MiB goal" >&2; exit 1; }
echo "$stamp_value" >"$stamp"
echo "build-discovery-image: kernel $kernel_version, ${#seen[@]} modules, initrd $size_kib KiB -> $target"
[ "${#skipped[@]}" -eq 0 ] || echo "build-discovery-image: tools left out: ${skipped[*]}"
