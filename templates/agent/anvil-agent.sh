#!/bin/sh
# Anvil machine agent: inventories the hardware, calls home, then polls for work.
# POSIX sh (busybox ash in the discovery image, dash or bash on installed systems); reads /sys,
# /proc and, where installed, dmidecode, smartctl and ipmitool. A fact it cannot read is left
# out, never guessed.
#
#   anvil-agent.sh               call home and poll (the discovery image runs this)
#   anvil-agent.sh --once        call home once and exit
#   anvil-agent.sh --inventory   print the JSON it would post, and exit
#
# Settings come from the environment, else from the kernel command line:
#   ANVIL_URL (anvil.url=)   the boot plane, e.g. http://10.0.0.1:8080
#   ANVIL_TOKEN (anvil.token=)  the machine's token; absent for a machine Anvil does not know yet
#   ANVIL_BOOTIF (BOOTIF=)   the MAC the machine booted from
#   ANVIL_TASK (anvil.task=)  a script to run once after the call-home (the image-deploy and wipe
#                            boot environments name their rendered task script here)
# For tests: ANVIL_SYSROOT prefixes /sys, /proc and /dev; ANVIL_DMIDECODE, ANVIL_IPMITOOL and
# ANVIL_SMARTCTL replace the tools; ANVIL_MACHINE_ARCH replaces `uname -m`.
set -u
export LC_ALL=C

root=${ANVIL_SYSROOT:-}
dmidecode_cmd=${ANVIL_DMIDECODE:-dmidecode}
ipmitool_cmd=${ANVIL_IPMITOOL:-ipmitool}
smartctl_cmd=${ANVIL_SMARTCTL:-smartctl}

log() { echo "anvil-agent: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

# --- JSON, built by hand: the image has no jq ----------------------------------------------

# A JSON string, or null for an empty value. Control characters are dropped.
js() {
    if [ -z "$1" ]; then printf 'null'; return; fi
    printf '"%s"' "$(printf '%s' "$1" | tr -d '\001-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}
# A JSON number, or null when the value is not a whole number.
jn() { case "$1" in '' | *[!0-9]*) printf 'null' ;; *) printf '%s' "$1" ;; esac; }
# A JSON boolean from 1/0.
jb() { case "$1" in 1) printf 'true' ;; 0) printf 'false' ;; *) printf 'null' ;; esac; }

# One line of a file, trailing blanks removed; empty when unreadable.
rd() { [ -r "$1" ] && sed -n '1{s/[[:space:]]*$//;p;}' "$1" 2>/dev/null; }
# The last path element of a symlink's target (a driver's name, a PCI address).
link_name() { [ -L "$1" ] && basename "$(readlink "$1")"; }
# A kernel command line value, e.g. `cmdline anvil.url`.
cmdline() { tr ' ' '\n' <"$root/proc/cmdline" 2>/dev/null | sed -n "s/^$1=//p" | head -n 1; }
# SMBIOS placeholders mean "not filled in".
dmi_value() {
    value=$(rd "$root/sys/class/dmi/id/$1")
    case "$value" in
    "" | "To Be Filled By O.E.M." | "Default string" | "Not Specified" | "None" | "System Serial Number" | "0123456789") ;;
    *) printf '%s' "$value" ;;
    esac
}
mac_of() { printf '%s' "$1" | sed -e 's/^01-//' -e 's/-/:/g' | tr 'A-F' 'a-f'; }

# --- Inventory -----------------------------------------------------------------------------

chassis_name() {
    case "$1" in
    3) echo desktop ;; 4) echo low-profile-desktop ;; 6) echo mini-tower ;; 7) echo tower ;; 9) echo laptop ;;
    10) echo notebook ;; 17) echo main-server-chassis ;; 23) echo rack-mount ;; 24) echo sealed-case-pc ;;
    25) echo multi-system ;; 28) echo blade ;; 29) echo blade-enclosure ;; 1) echo other ;; 2) echo unknown ;;
    "") ;; *) echo "type-$1" ;;
    esac
}

system_facts() {
    uuid=$(dmi_value product_uuid)
    [ -z "$uuid" ] && have "$dmidecode_cmd" && uuid=$("$dmidecode_cmd" -s system-uuid 2>/dev/null | head -n 1)
    printf '"systemVendor":%s,"systemProduct":%s,"systemSerial":%s,"systemUUID":%s,' \
        "$(js "$(dmi_value sys_vendor)")" "$(js "$(dmi_value product_name)")" "$(js "$(dmi_value product_serial)")" \
        "$(js "$(printf '%s' "$uuid" | tr 'A-F' 'a-f')")"
    printf '"boardVendor":%s,"boardProduct":%s,"boardSerial":%s,"chassisType":%s,"chassisSerial":%s,' \
        "$(js "$(dmi_value board_vendor)")" "$(js "$(dmi_value board_name)")" "$(js "$(dmi_value board_serial)")" \
        "$(js "$(chassis_name "$(dmi_value chassis_type)")")" "$(js "$(dmi_value chassis_serial)")"
    printf '"biosVendor":%s,"biosVersion":%s,' "$(js "$(dmi_value bios_vendor)")" "$(js "$(dmi_value bios_version)")"
}

cpu_facts() {
    awk -F': *' '
        /^processor/ { threads++ }
        /^model name/ && model == "" { model = $2 }
        /^physical id/ { socket = $2; sockets[socket] = 1 }
        /^cpu cores/ { cores[socket] = $2 }
        END {
            n = 0; total = 0
            for (s in sockets) n++
            for (s in cores) total += cores[s]
            if (n == 0) n = 1
            if (total == 0) total = threads
            gsub(/[\\"]/, "", model); sub(/[ \t]+$/, "", model)
            printf "\"cpuModel\":%s,\"cpuSockets\":%d,\"cpuCores\":%d,\"cpuThreads\":%d,", (model == "" ? "null" : "\"" model "\""), n, total, threads
        }' "$root/proc/cpuinfo"
}

# DIMMs from SMBIOS type 17 when dmidecode can read it; the total is their sum. Without it, the
# kernel's memory blocks (installed memory, in block-size steps), else MemTotal (less than installed).
memory_facts() {
    modules=""
    if have "$dmidecode_cmd"; then
        modules=$("$dmidecode_cmd" -t 17 2>/dev/null | awk -F': *' '
            function flush() {
                if (size > 0) {
                    printf "%s{\"locator\":\"%s\",\"sizeBytes\":%.0f", sep, locator, size
                    if (type != "" && type != "Unknown" && type != "Other") printf ",\"type\":\"%s\"", type
                    if (speed > 0) printf ",\"speedMTs\":%d", speed
                    if (maker != "") printf ",\"manufacturer\":\"%s\"", maker
                    if (serial != "") printf ",\"serial\":\"%s\"", serial
                    if (part != "") printf ",\"partNumber\":\"%s\"", part
                    printf "}"; sep = ","
                }
                size = 0; locator = ""; type = ""; speed = 0; maker = ""; serial = ""; part = ""
            }
            function clean(v) { gsub(/[\\"]/, "", v); sub(/[ \t]+$/, "", v); if (v ~ /^(Not Specified|Unknown|NO DIMM|None|0+|Undefined)$/) v = ""; return v }
            /^Memory Device/ { flush(); inside = 1; next }
            /^Handle / { if (inside) flush(); inside = 0 }
            !inside { next }
            $1 ~ /^[ \t]*Size$/ {
                split($2, p, " ")
                unit = p[2]; size = p[1]
                if (unit == "kB" || unit == "KB") size *= 1024
                else if (unit == "MB") size *= 1048576
                else if (unit == "GB") size *= 1073741824
                else if (unit == "TB") size *= 1099511627776
                else size = 0
            }
            $1 ~ /^[ \t]*Locator$/ { locator = clean($2) }
            $1 ~ /^[ \t]*Type$/ { type = clean($2) }
            $1 ~ /^[ \t]*Speed$/ { split($2, p, " "); speed = p[1] + 0 }
            $1 ~ /^[ \t]*Manufacturer$/ { maker = clean($2) }
            $1 ~ /^[ \t]*Serial Number$/ { serial = clean($2) }
            $1 ~ /^[ \t]*Part Number$/ { part = clean($2) }
            END { if (inside) flush() }')
    fi
    if [ -n "$modules" ]; then
        total=$(printf '%s' "$modules" | tr ',' '\n' | sed -n 's/.*"sizeBytes":\([0-9]*\).*/\1/p' | awk '{ t += $1 } END { printf "%.0f", t }')
    elif [ -r "$root/sys/devices/system/memory/block_size_bytes" ]; then
        block=$(printf '%d' "0x$(rd "$root/sys/devices/system/memory/block_size_bytes")")
        online=$(cat "$root"/sys/devices/system/memory/memory*/online 2>/dev/null | grep -c '^1$')
        total=$((block * online))
    else
        total=$(awk '/^MemTotal:/ { printf "%.0f", $2 * 1024 }' "$root/proc/meminfo")
    fi
    printf '"memoryBytes":%s,"memoryModules":[%s],' "$(jn "$total")" "$modules"
}

disk_facts() {
    sep=""
    printf '"disks":['
    for dir in "$root"/sys/block/*; do
        [ -e "$dir/size" ] || continue
        name=$(basename "$dir")
        case "$name" in loop* | ram* | zram* | dm-* | md* | sr* | fd* | nbd*) continue ;; esac
        sectors=$(rd "$dir/size")
        serial=$(rd "$dir/serial")
        [ -z "$serial" ] && serial=$(rd "$dir/device/serial")
        if [ -z "$serial" ] && have "$smartctl_cmd"; then
            serial=$("$smartctl_cmd" -i "/dev/$name" 2>/dev/null | sed -n 's/^Serial [Nn]umber: *//p' | head -n 1)
        fi
        wwn=$(rd "$dir/wwid")
        [ -z "$wwn" ] && wwn=$(rd "$dir/device/wwid")
        printf '%s{"name":%s,"sizeBytes":%s,"model":%s,"serial":%s,"rotational":%s,"wwn":%s}' "$sep" "$(js "$name")" \
            "$(jn "$((${sectors:-0} * 512))")" "$(js "$(rd "$dir/device/model")")" "$(js "$serial")" \
            "$(jb "$(rd "$dir/queue/rotational")")" "$(js "$wwn")"
        sep=","
    done
    printf '],'
}

# A device's PCI address: the device itself, or its parent (virtio NICs sit on a PCI function).
pci_address_of() {
    target=$(readlink -f "$1")
    for candidate in "$(basename "$target")" "$(basename "$(dirname "$target")")"; do
        case "$candidate" in ????:??:??.?) echo "$candidate"; return ;; esac
    done
}

nic_facts() {
    sep=""
    printf '"nics":['
    for dir in "$root"/sys/class/net/*; do
        # Physical NICs only: bridges, bonds, veths and lo have no device.
        [ -e "$dir/device" ] || continue
        mac=$(rd "$dir/address")
        [ -n "$mac" ] || continue
        speed=$(rd "$dir/speed")
        case "$speed" in -*) speed="" ;; esac
        printf '%s{"name":%s,"mac":%s,"driver":%s,"link":%s,"speedMbps":%s,"pciAddress":%s}' "$sep" \
            "$(js "$(basename "$dir")")" "$(js "$mac")" "$(js "$(link_name "$dir/device/driver")")" \
            "$(jb "$(rd "$dir/carrier")")" "$(jn "$speed")" "$(js "$(pci_address_of "$dir/device")")"
        sep=","
    done
    printf '],'
}

pci_facts() {
    sep=""
    printf '"pciDevices":['
    for dir in "$root"/sys/bus/pci/devices/*; do
        [ -e "$dir/vendor" ] || continue
        printf '%s{"address":%s,"vendorID":%s,"deviceID":%s,"classCode":%s,"driver":%s}' "$sep" "$(js "$(basename "$dir")")" \
            "$(js "$(rd "$dir/vendor" | sed 's/^0x//')")" "$(js "$(rd "$dir/device" | sed 's/^0x//')")" \
            "$(js "$(rd "$dir/class" | sed 's/^0x//')")" "$(js "$(link_name "$dir/driver")")"
        sep=","
    done
    printf ']'
}

# The BMC's LAN channel, when the host has an IPMI device and ipmitool.
bmc_facts() {
    [ -e "$root/dev/ipmi0" ] || [ -e "$root/dev/ipmi/0" ] || return 0
    have "$ipmitool_cmd" || return 0
    lan=$("$ipmitool_cmd" lan print 1 2>/dev/null) || return 0
    field() { printf '%s\n' "$lan" | sed -n "s/^$1 *: *//p" | head -n 1 | sed 's/[[:space:]]*$//'; }
    address=$(field "IP Address")
    [ "$address" = "0.0.0.0" ] && address=""
    printf ',"bmc":{"address":%s,"mac":%s,"netmask":%s,"gateway":%s}' "$(js "$address")" "$(js "$(field "MAC Address")")" \
        "$(js "$(field "Subnet Mask")")" "$(js "$(field "Default Gateway IP")")"
}

architecture() {
    case "${ANVIL_MACHINE_ARCH:-$(uname -m)}" in
    x86_64) echo amd64 ;; aarch64 | arm64) echo arm64 ;; *) echo unknown ;;
    esac
}

inventory() {
    bootif=${ANVIL_BOOTIF:-$(cmdline BOOTIF)}
    printf '{"architecture":"%s","bootMAC":%s,"facts":{' "$(architecture)" "$(js "$(mac_of "$bootif")")"
    system_facts
    cpu_facts
    memory_facts
    disk_facts
    nic_facts
    pci_facts
    bmc_facts
    printf '}}\n'
}

# --- Talking to Anvil ----------------------------------------------------------------------

state=${ANVIL_STATE:-/run/anvil-agent}
url=${ANVIL_URL:-$(cmdline anvil.url)}
token=${ANVIL_TOKEN:-$(cmdline anvil.token)}

# wget inside `timeout`: busybox 1.35's wget crashes when -T is combined with --post-data.
# Prints the body; the status line and headers go to $state/headers. A POST sends the file named
# by its third argument (the inventory by default).
http() {
    method=$1 path=$2 body=${3:-$state/inventory.json}
    auth=""
    [ -n "$token" ] && auth="Authorization: Bearer $token"
    if [ "$method" = POST ]; then
        timeout 30 wget -q -S -O - --header "Content-Type: application/json" ${auth:+--header "$auth"} \
            --post-file "$body" "$url$path" 2>"$state/headers"
    else
        timeout 30 wget -q -S -O - ${auth:+--header "$auth"} "$url$path" 2>"$state/headers"
    fi
}
status() { sed -n 's/.*HTTP\/1\.[01] \([0-9][0-9][0-9]\).*/\1/p' "$state/headers" | tail -n 1; }
json_field() { printf '%s' "$2" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }

# Posts the inventory until Anvil takes it: back-off from 2 s to 60 s while it is unreachable or busy.
call_home() {
    delay=2
    while :; do
        answer=$(http POST /api/v1/machines/callhome)
        code=$(status)
        case "$code" in
        200 | 201)
            token=$(json_field token "$answer")
            machine=$(json_field machine "$answer")
            poll=$(json_field pollSeconds "$answer")
            printf '%s\n' "$token" >"$state/token"
            printf '%s\n' "$machine" >"$state/machine"
            log "called home: machine $(json_field name "$answer") ($machine), state $(json_field state "$answer")"
            return 0
            ;;
        401) log "Anvil knows this machine but refused its token (HTTP 401); retrying in ${delay}s" ;;
        409) log "Anvil found an identity conflict for this hardware (HTTP 409, see its events); retrying in ${delay}s" ;;
        4??) log "Anvil refused the inventory (HTTP $code); retrying in ${delay}s" ;;
        "") log "Anvil at $url is unreachable; retrying in ${delay}s" ;;
        *) log "Anvil answered HTTP $code; retrying in ${delay}s" ;;
        esac
        sleep "$delay"
        delay=$((delay * 2))
        [ "$delay" -gt 60 ] && delay=60
    done
}

# The task on the kernel command line, once per boot (the state directory is on tmpfs): fetched
# (5 tries), run with the agent's URL and token in the environment, its output on the console and
# its exit code logged and posted to /api/v1/machines/<id>/task-result, where Anvil notes it in the
# machine's history (a failure fails a deploying or wiping machine); $state/task.status keeps it here.
run_task() {
    task_url=${ANVIL_TASK:-$(cmdline anvil.task)}
    [ -n "$task_url" ] || return 0
    if [ -r "$state/task.status" ]; then
        log "task $task_url already ran this boot (exit $(cat "$state/task.status"))"
        return 0
    fi
    auth=""
    [ -n "$token" ] && auth="Authorization: Bearer $token"
    tries=0
    # Without -q, wget says why a fetch failed (its last line that is not blank: "… 404 …").
    until timeout 60 wget -O "$state/task.sh" ${auth:+--header "$auth"} "$task_url" 2>"$state/task.fetch" && [ -s "$state/task.sh" ]; do
        tries=$((tries + 1))
        if [ "$tries" -ge 5 ]; then
            log "cannot fetch task $task_url: $(sed "/^[[:space:]]*$/d" "$state/task.fetch" | tail -n 1)"
            return 1
        fi
        sleep 2
    done
    log "running task $task_url"
    ANVIL_URL=$url ANVIL_TOKEN=$token sh "$state/task.sh"
    code=$?
    printf '%s\n' "$code" >"$state/task.status"
    log "task $task_url exited with $code"
    printf '{"task":%s,"exitCode":%s}\n' "$(js "$task_url")" "$code" >"$state/task-result.json"
    http POST "/api/v1/machines/$machine/task-result" "$state/task-result.json" >/dev/null
    log "task result posted to Anvil: HTTP $(status)"
}

# Asks for the next job. Anvil has no workflow engine yet, so the answer is always "none" (204);
# the poll keeps the token fresh (Anvil renews it past half-life) and shows the agent alive.
poll_jobs() {
    while :; do
        http GET "/api/v1/machines/$machine/next-job" >/dev/null
        code=$(status)
        renewed=$(sed -n 's/^ *Anvil-Token: *//p' "$state/headers" | tr -d '\r' | tail -n 1)
        if [ -n "$renewed" ]; then
            token=$renewed
            printf '%s\n' "$token" >"$state/token"
        fi
        case "$code" in
        204) ;;
        401) log "token refused; calling home again"; call_home ;;
        "") log "Anvil is unreachable; polling again in ${poll:-15}s" ;;
        *) log "unexpected answer to the job poll (HTTP $code)" ;;
        esac
        sleep "${poll:-15}"
    done
}

case "${1:-}" in
--inventory)
    inventory
    exit 0
    ;;
"" | --once) ;;
*)
    echo "usage: anvil-agent.sh [--once | --inventory]" >&2
    exit 2
    ;;
esac
[ -n "$url" ] || { log "no Anvil URL: set ANVIL_URL or boot with anvil.url="; exit 2; }
mkdir -p "$state"
[ -z "$token" ] && [ -r "$state/token" ] && token=$(cat "$state/token")
inventory >"$state/inventory.json"
log "inventory: $(wc -c <"$state/inventory.json") bytes; calling home to $url"
call_home
run_task
[ "${1:-}" = "--once" ] && exit 0
poll_jobs
