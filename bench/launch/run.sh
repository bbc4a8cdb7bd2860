#!/usr/bin/env bash
# kiln launch benchmark: time from "launch" to the first user-data line (and, for debian-12, to
# sshd answering), for kiln against systemd-nspawn and a plain "cp + loop mount + chroot", on the
# same images, interleaved within each run. See bench/launch/README.md. Run as root:
#   bench/launch/run.sh
#
# Environment:
#   RUNS=5              runs (medians, min and max over runs are reported)
#   KILN=<repo>/build/kiln          kiln binary (kiln-init is taken from beside it, or $KILN_INIT)
#   BENCH_DIR=/var/tmp/kiln-bench-launch   image cache, XFS pool, run dir, raw results
#   SETTLE=0.3          seconds to sleep after `sync` before every sample
#   WARMUP=1            one untimed pass (run 0: checked, not in the statistics) before run 1
#   HOST_DOWN=auto      at the end: auto = `kiln host down` only if this script brought the VPC
#                       route up and no other kiln bridge or instance link exists; always; never
#   NO_REPORT=0         1 = print the section instead of writing bench/RESULTS.md
#   RESULTS_MD=<repo>/bench/RESULTS.md
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
BENCH=${BENCH_DIR:-/var/tmp/kiln-bench-launch}
RUNS=${RUNS:-5}
KILN_SRC=${KILN:-$ROOT/build/kiln}
KILN_INIT_SRC=${KILN_INIT:-$(dirname "$KILN_SRC")/kiln-init}
KILN_SHIM_SRC=${KILN_SHIM:-$(dirname "$KILN_SRC")/kiln-shim}
SETTLE=${SETTLE:-0.3}
WARMUP=${WARMUP:-1}
HOST_DOWN=${HOST_DOWN:-auto}
NO_REPORT=${NO_REPORT:-0}
RESULTS_MD=${RESULTS_MD:-$ROOT/bench/RESULTS.md}

CACHE=$BENCH/cache
POOL=$BENCH/pool
RUN_DIR=$BENCH/run
ROOTFS=$BENCH/rootfs      # unpacked images for systemd-nspawn -D (ext4 root filesystem)
EXT4=$BENCH/ext4          # base images copied to the ext4 root for the cp + mount baseline
MNT=$BENCH/mnt
IMAGES="busybox debian-12"
SIZES="1G 8G"
VPC=172.31.0.0/16
# kiln instances: bridge kb-lbench-0 (group "lbench"), 172.31.208.0/20, a fresh address for every launch
BRIDGE=kb-lbench-0
GATEWAY=172.31.208.1
# systemd-nspawn containers with a network: our own bridge (not kb-*, so no `kiln host down`
# run by someone else removes it), 172.31.224.0/24
NSP_BRIDGE=knsp-lbench
NSP_GW=172.31.224.1/24
USER_DATA_LINE="KILN-UD-FIRST-LINE"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '\nBENCHMARK FAILED: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root (loop mounts, namespaces, bridges)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
((RUNS <= 100)) || die "RUNS must be at most 100 (one address per kiln launch in a /20)"
case $HOST_DOWN in auto|always|never) ;; *) die "HOST_DOWN must be auto, always or never";; esac
for c in systemd-nspawn mkfs.xfs mkfs.ext4 mmdebstrap losetup mount umount chroot ip cp tar sha256sum findmnt; do
  command -v "$c" >/dev/null || die "missing command: $c$([[ $c == systemd-nspawn ]] && echo ' (apt-get install systemd-container)')"
done
[[ -x $PY ]] || die "missing $PY"
[[ -x $KILN_SRC ]] || die "kiln binary not found at $KILN_SRC (make -C $ROOT build)"
[[ -x $KILN_INIT_SRC ]] || die "kiln-init not found at $KILN_INIT_SRC"
[[ -x $KILN_SHIM_SRC ]] || die "kiln-shim not found at $KILN_SHIM_SRC"
[[ $(findmnt -n -o FSTYPE --target "$(dirname "$BENCH")") == ext4 ]] \
  || die "$(dirname "$BENCH") must be on the ext4 root filesystem (the cp + mount baseline and nspawn -D use it)"

# ----------------------------------------------------------------------------- results, binaries
mkdir -p "$CACHE" "$RUN_DIR" "$ROOTFS" "$EXT4" "$MNT"
RES=$BENCH/results/$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$RES/bin"
# measure private copies, so a concurrent rebuild of build/ cannot mix versions
cp "$KILN_SRC" "$RES/bin/kiln"
cp "$KILN_INIT_SRC" "$RES/bin/kiln-init"
cp "$KILN_SHIM_SRC" "$RES/bin/kiln-shim"
KILN=$RES/bin/kiln
export KILN_INIT=$RES/bin/kiln-init KILN_SHIM=$RES/bin/kiln-shim
RAW=$RES/raw.jsonl
META=$RES/meta.tsv
: > "$RAW"
: > "$META"
meta() { printf '%s\t%s\n' "$1" "$2" >> "$META"; }
BENCH_T0=$EPOCHREALTIME
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }

# ----------------------------------------------------------------------------- cleanup
ROUTE_WAS_UP=0
POOL_OPENED=0
cleanup() {
  local rc=$? id
  set +e
  # instances of our run directory that a failure left behind
  if [[ -d $RUN_DIR ]]; then
    for id in "$RUN_DIR"/i-*; do
      id=${id##*/}
      [[ $id =~ ^i-[0-9a-f]{17}$ ]] || continue
      log "cleanup: stopping leftover instance $id"
      "$KILN" runtime stop "$RUN_DIR" "$id" --force >&2
      "$KILN" runtime rm "$RUN_DIR" "$id" >&2
    done
  fi
  mountpoint -q "$MNT" && { umount "$MNT" || umount -l "$MNT"; }
  rm -f "$EXT4"/scratch-*.img
  [[ -d $POOL ]] && mountpoint -q "$POOL" && rm -f "$POOL"/bench-i-*.img "$POOL"/nsp-*.img
  ip link del "$NSP_BRIDGE" 2>/dev/null
  local others="" l
  for l in /sys/class/net/kb-* /sys/class/net/kv*; do
    [[ -e $l && ${l##*/} != "$BRIDGE" ]] && others+="${others:+ }${l##*/}"
  done
  if [[ $HOST_DOWN == always || ( $HOST_DOWN == auto && $ROUTE_WAS_UP == 0 && -z $others ) ]]; then
    log "cleanup: kiln host down --run $RUN_DIR --pool $POOL"
    "$KILN" host down --run "$RUN_DIR" --pool "$POOL" >&2
  else
    # only what is ours: the shared VPC route and NAT stay for whoever else uses them
    ip link del "$BRIDGE" 2>/dev/null
    [[ $POOL_OPENED == 1 ]] && "$KILN" pool unmount "$POOL" >&2
    log "cleanup: removed $BRIDGE and $NSP_BRIDGE, unmounted the pool; left the VPC route and NAT" \
        "(route up before we started: $ROUTE_WAS_UP; other kiln links: ${others:-none})"
  fi
  local left
  left=$(losetup -a | grep -F "$BENCH" || true)
  [[ -z $left ]] || log "cleanup: loop devices still attached under $BENCH: $left"
  [[ $rc -eq 0 ]] || printf 'exit status %s (raw results so far: %s)\n' "$rc" "$RES" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ----------------------------------------------------------------------------- images
# busybox: a directory (seconds); debian-12: a tarball (cached by its build script)
BB_ROOT=$CACHE/busybox-root
DEB_TAR=$CACHE/debian-12.tar
if [[ ! -f $BB_ROOT/etc/os-release || $ROOT/images/busybox/build.sh -nt $BB_ROOT/etc/os-release ]]; then
  log "building the busybox image"
  "$ROOT/images/busybox/build.sh" "$BB_ROOT" >&2
fi
T=$EPOCHREALTIME
"$ROOT/images/debian-12/build.sh" "$DEB_TAR" > "$CACHE/debian-12-build.log" 2>&1 || {
  tail -20 "$CACHE/debian-12-build.log" >&2; die "images/debian-12/build.sh failed (log: $CACHE/debian-12-build.log)"; }
log "$(tail -1 "$CACHE/debian-12-build.log") ($(secs "$T" "$EPOCHREALTIME") s)"
# The image runs cloud-init, which reads the user data from the metadata service; this bench
# boots with `kiln runtime run`, below the daemon, where there is none. So it measures the image
# without cloud-init's marker and rc.d entry: kiln-init runs the user data itself, as nspawn's
# script does (bench/cloud_init.py measures cloud-init's path through the daemon).
DEB_IMG_TAR=$CACHE/debian-12-kiln-init.tar
if [[ ! -f $DEB_IMG_TAR || $DEB_TAR -nt $DEB_IMG_TAR ]]; then
  cp "$DEB_TAR" "$DEB_IMG_TAR.tmp"
  tar --delete -f "$DEB_IMG_TAR.tmp" ./etc/kiln/cloud-init ./etc/kiln/rc.d/50-cloud-init \
    || die "cannot drop cloud-init's marker from $DEB_TAR"
  mv "$DEB_IMG_TAR.tmp" "$DEB_IMG_TAR"
fi

# content keys: a base volume, an unpacked root or an ext4 copy is rebuilt when its source changed
key_of() {
  case $1 in
    busybox) (cd "$BB_ROOT" && find . -printf '%p %s %m %l\n' | sort | sha256sum | cut -c1-16) ;;
    debian-12) sha256sum "$DEB_IMG_TAR" | cut -c1-16 ;;
  esac
}
src_of() { case $1 in busybox) echo "$BB_ROOT";; debian-12) echo "$DEB_IMG_TAR";; esac; }
declare -A KEY
for img in $IMAGES; do KEY[$img]=$(key_of "$img"); done

# ----------------------------------------------------------------------------- host network, pool
if ip route show "$VPC" | grep -q '^unreachable'; then ROUTE_WAS_UP=1; fi
"$KILN" host up || die "kiln host up failed"
ip route show "$VPC" | grep -q '^unreachable' || die "kiln host up did not route $VPC to unreachable"
"$KILN" pool open "$POOL" --size 16G >&2 || die "kiln pool open $POOL failed"
POOL_OPENED=1
[[ $(findmnt -n -o FSTYPE --target "$POOL") == xfs ]] || die "$POOL is not a mounted XFS pool"
ip link show "$NSP_BRIDGE" >/dev/null 2>&1 || ip link add "$NSP_BRIDGE" type bridge
ip addr replace "$NSP_GW" dev "$NSP_BRIDGE"
ip link set "$NSP_BRIDGE" up

IMPORT_NOTES=()
for img in $IMAGES; do
  for size in $SIZES; do
    vol=$POOL/$img-${size,,}.img stamp=$POOL/.$img-${size,,}.key
    if [[ -f $vol && -f $stamp && $(cat "$stamp") == "${KEY[$img]}" ]]; then continue; fi
    rm -f "$vol" "$stamp" "$EXT4/$img-${size,,}.img"
    T=$EPOCHREALTIME
    "$KILN" image import "$(src_of "$img")" --pool "$POOL" --name "$img-${size,,}.img" --size "$size" >&2 \
      || die "kiln image import $(src_of "$img") --size $size failed"
    echo "${KEY[$img]}" > "$stamp"
    IMPORT_NOTES+=("$img $size $(secs "$T" "$EPOCHREALTIME")")
    log "imported $img at $size in $(secs "$T" "$EPOCHREALTIME") s"
  done
  stamp=$ROOTFS/.$img.key
  if [[ ! -d $ROOTFS/$img || ! -f $stamp || $(cat "$stamp") != "${KEY[$img]}" ]]; then
    log "unpacking $img into $ROOTFS/$img (for systemd-nspawn -D)"
    rm -rf "${ROOTFS:?}/$img" "$stamp"
    mkdir -p "$ROOTFS/$img"
    case $img in
      busybox) cp -a "$BB_ROOT/." "$ROOTFS/$img/" ;;
      debian-12) tar --numeric-owner -xpf "$DEB_IMG_TAR" -C "$ROOTFS/$img" ;;
    esac
    echo "${KEY[$img]}" > "$stamp"
  fi
  for size in $SIZES; do
    e=$EXT4/$img-${size,,}.img stamp=$EXT4/.$img-${size,,}.key
    if [[ ! -f $e || ! -f $stamp || $(cat "$stamp") != "${KEY[$img]}" ]]; then
      log "copying the $img $size base volume to the ext4 root (cp + mount baseline)"
      cp --sparse=always "$POOL/$img-${size,,}.img" "$e"
      echo "${KEY[$img]}" > "$stamp"
    fi
  done
done
for img in $IMAGES; do
  for size in $SIZES; do
    v=$POOL/$img-${size,,}.img
    meta "base_$img-${size,,}" "$(stat -c %s "$v") $(du -B1 "$v" | cut -f1) $(du -B1 "$EXT4/$img-${size,,}.img" | cut -f1)"
  done
done

# the user data, and the nspawn script that does what kiln-init does on a first boot
UD=$RES/user-data.sh
printf '#!/bin/sh\necho %s\n' "$USER_DATA_LINE" > "$UD"
chmod 755 "$UD"
NSP_SSH=$RES/nspawn-sshd.sh
cat > "$NSP_SSH" <<'EOF'
#!/bin/sh
# run by systemd-nspawn --as-pid2 --network-bridge: network, then kiln-init's first-boot steps
ip link set lo up
ip addr add "$KB_ADDR" dev host0
ip link set host0 up
echo KB-NET-UP
rm -f /etc/ssh/ssh_host_*_key*
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
/usr/sbin/sshd -D &
/kiln-ud
wait
EOF
chmod 755 "$NSP_SSH"

# ----------------------------------------------------------------------------- samples
KILN_N=0   # kiln launches so far: each gets its own address
NSP_N=0
ROUTE_FIXES=0
sample() {  # sample RUN SEQ LABEL -- KIND ARGS...
  local run=$1 seq=$2 label=$3; shift 4
  local line
  if ! ip route show "$VPC" | grep -q '^unreachable'; then
    # someone ran `kiln host down` meanwhile; nothing may leave by the default route
    ROUTE_FIXES=$((ROUTE_FIXES + 1))
    log "the $VPC unreachable route is gone (another user's kiln host down?): kiln host up again"
    "$KILN" host up || die "kiln host up failed"
  fi
  sync; sleep "$SETTLE"
  line=$($PY "$HERE/sample.py" "$@" --label "run=$run" --label "seq=$seq" --label "label=$label") \
    || die "sample.py crashed for $label (run $run)"
  printf '%s\n' "$line" >> "$RAW"
  $PY - "$line" >&2 <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
f = lambda k: "-" if d.get(k) is None else "%.1f" % d[k]
print("  r%s %-28s prep %6s  ready %6s  line %7s  ssh %7s  %s" % (
    d["run"], d["label"], f("t_prep"), f("t_ready"), f("t_line"), f("t_ssh"),
    "ok" if d["ok"] else "PROBLEM: " + " | ".join(d["problems"])))
EOF
}

# One launch of each kind; the order rotates from run to run.
plan() {
  local img size
  for img in $IMAGES; do
    for size in $SIZES; do
      echo "kiln|$img|$size"
      [[ $size == 1G ]] && echo "nspawn-dir|$img|-"
      echo "nspawn-vol|$img|$size"
      echo "cp+mount|$img|$size"
    done
  done
  echo "nspawn-dir-sshd|debian-12|-"
  echo "nspawn-vol-sshd|debian-12|1G"
  echo "keygen|debian-12|-"
}
warm_plan() { printf '%s\n' "kiln|busybox|1G" "kiln|debian-12|1G" "nspawn-dir|busybox|-" \
  "nspawn-dir|debian-12|-" "nspawn-vol|busybox|1G" "cp+mount|busybox|1G"; }

do_sample() {  # do_sample RUN SEQ TOOL IMAGE SIZE
  local run=$1 seq=$2 tool=$3 img=$4 size=$5 s=${5,,}
  local label="$tool $img" L=(--label "tool=$tool" --label "image=$img" --label "size=$size")
  [[ $size == - ]] || label+=" $size"
  case $tool in
    kiln)
      local ip="172.31.$((208 + (KILN_N + 10) / 250)).$(((KILN_N + 10) % 250 + 1))"
      KILN_N=$((KILN_N + 1))
      local ssh=(); [[ $img == debian-12 ]] && ssh=(--ssh)
      sample "$run" "$seq" "$label" -- kiln --kiln "$KILN" --pool "$POOL" --base "$POOL/$img-$s.img" \
        --run-dir "$RUN_DIR" --address "$ip/20" --gateway "$GATEWAY" --bridge "$BRIDGE" \
        --user-data "$UD" "${ssh[@]}" "${L[@]}" ;;
    nspawn-dir)
      sample "$run" "$seq" "$label" -- nspawn --root "$ROOTFS/$img" --user-data "$UD" \
        --stderr-log "$RES/nspawn.stderr" "${L[@]}" ;;
    nspawn-vol)
      sample "$run" "$seq" "$label" -- nspawn --base "$POOL/$img-$s.img" --pool "$POOL" --mnt "$MNT" \
        --user-data "$UD" --stderr-log "$RES/nspawn.stderr" "${L[@]}" ;;
    nspawn-dir-sshd|nspawn-vol-sshd)
      local ip="172.31.224.$((NSP_N % 240 + 10))" where=(--root "$ROOTFS/$img")
      NSP_N=$((NSP_N + 1))
      [[ $tool == nspawn-vol-sshd ]] && where=(--base "$POOL/$img-$s.img" --pool "$POOL" --mnt "$MNT")
      sample "$run" "$seq" "$label" -- nspawn "${where[@]}" --user-data "$UD" --ssh --ssh-script "$NSP_SSH" \
        --bridge "$NSP_BRIDGE" --address "$ip/24" --stderr-log "$RES/nspawn.stderr" "${L[@]}" ;;
    cp+mount)
      sample "$run" "$seq" "$label" -- cpmount --base "$EXT4/$img-$s.img" --scratch "$EXT4/scratch-$seq.img" \
        --mnt "$MNT" --user-data "$UD" "${L[@]}" ;;
    keygen)
      sample "$run" "$seq" "$label" -- keygen --root "$ROOTFS/$img" "${L[@]}" ;;
  esac
}

# ----------------------------------------------------------------------------- metadata
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta nproc "$(nproc)"
meta kernel "$(uname -r)"
meta cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta mem "$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
meta runs "$RUNS"
meta settle "$SETTLE"
meta warmup "$WARMUP"
meta results_dir "$RES"
meta loadavg_before "$(cat /proc/loadavg)"
if git_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
  git_rev="git $git_rev, $(git -C "$ROOT" status --porcelain -- src 2>/dev/null | wc -l) changed paths under src/"
else
  git_rev="git: no commit yet"
fi
meta version_kiln "$git_rev; kiln sha256 $(sha256sum "$KILN" | cut -c1-12), kiln-init sha256 $(sha256sum "$KILN_INIT" | cut -c1-12), built $(date -u -r "$KILN_SRC" '+%Y-%m-%d %H:%M UTC')"
meta version_nspawn "$(systemd-nspawn --version | head -1)"
meta version_cp "$(cp --version | head -1)"
meta version_mount "$(mount --version | head -1)"
meta version_busybox "$(grep -m1 VERSION_ID "$BB_ROOT/etc/os-release" | cut -d= -f2)"
meta version_openssh "$(chroot "$ROOTFS/debian-12" dpkg-query -W -f '${Version}' openssh-server 2>/dev/null || echo '?')"
meta debian_tar_sha256 "$(sha256sum "$DEB_IMG_TAR" | cut -c1-16)"
meta imports "$(IFS=';'; echo "${IMPORT_NOTES[*]:-cached}")"
log "results go to $RES"

# ----------------------------------------------------------------------------- measurement
SEQ=0
if [[ $WARMUP == 1 ]]; then
  log "warm-up pass (run 0: checked, not counted)"
  while IFS='|' read -r tool img size; do
    SEQ=$((SEQ + 1)); do_sample 0 "$SEQ" "$tool" "$img" "$size"
  done < <(warm_plan)
fi
mapfile -t PLAN < <(plan)
N=${#PLAN[@]}
for RUN in $(seq "$RUNS"); do
  meta "loadavg_start_$RUN" "$(cut -d' ' -f1-3 /proc/loadavg)"
  log "run $RUN/$RUNS (load $(cut -d' ' -f1-3 /proc/loadavg))"
  for ((k = 0; k < N; k++)); do
    IFS='|' read -r tool img size <<< "${PLAN[$(((k + (RUN - 1) * 3) % N))]}"
    SEQ=$((SEQ + 1)); do_sample "$RUN" "$SEQ" "$tool" "$img" "$size"
  done
  meta "loadavg_end_$RUN" "$(cut -d' ' -f1-3 /proc/loadavg)"
done
meta loadavg_after "$(cat /proc/loadavg)"
meta route_fixes "$ROUTE_FIXES"
meta run_seconds "$(secs "$BENCH_T0" "$EPOCHREALTIME")"
meta loops_after "$(losetup -a | grep -cF "$BENCH/pool/" || true)"
log "measurements done in $(secs "$BENCH_T0" "$EPOCHREALTIME") s"

if [[ $NO_REPORT == 1 ]]; then
  $PY "$HERE/report.py" "$RES" -
else
  $PY "$HERE/report.py" "$RES" "$RESULTS_MD"
  log "wrote section '## Launch (bench/launch)' of $RESULTS_MD"
fi
