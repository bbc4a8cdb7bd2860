#!/usr/bin/env bash
# kiln block-store benchmark: kiln's store against restic and borg on the same input, same run.
# See bench/store/README.md. Run as root:  bench/store/run.sh
#
# Environment:
#   RUNS=3              runs per tool (medians are reported)
#   TOOLS="kiln restic borg borg-fixed"   tools to measure, interleaved in this order per run
#   KILN=<repo>/build/kiln                kiln binary
#   BENCH_DIR=/var/tmp/kiln-bench         input cache, pool, repositories, restores, raw results
#   KEEP_MOUNTED=0      1 = leave the XFS pool mounted at the end
#   SETTLE=1            seconds to sleep after `sync` before every timed step
#   RUN_SETTLE=5        seconds to sleep after deleting a run's repositories and restores
#   INPUTS_ONLY=0       1 = build/check the inputs and stop
#   NO_REPORT=0         1 = do not touch bench/RESULTS.md
#   RESULTS_MD=<repo>/bench/RESULTS.md
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
BENCH=${BENCH_DIR:-/var/tmp/kiln-bench}
RUNS=${RUNS:-3}
TOOLS=${TOOLS:-"kiln restic borg borg-fixed"}
KILN=${KILN:-$ROOT/build/kiln}
KEEP_MOUNTED=${KEEP_MOUNTED:-0}
SETTLE=${SETTLE:-1}
RUN_SETTLE=${RUN_SETTLE:-5}
INPUTS_ONLY=${INPUTS_ONLY:-0}
NO_REPORT=${NO_REPORT:-0}
RESULTS_MD=${RESULTS_MD:-$ROOT/bench/RESULTS.md}

POOL_IMG=$BENCH/pool.xfs
POOL=$BENCH/pool
POOL_SIZE=12G
CACHE=$BENCH/cache
TARBALL=$CACHE/bookworm-minbase.tar
MNT=$BENCH/mnt
REPOS=$BENCH/repos
RESTORE=$BENCH/restore
INPUT_VERSION=1
STAMP=$POOL/.inputs-v$INPUT_VERSION
VOL0=$POOL/vol0.img
VOL1=$POOL/vol1.img
VOL2=$POOL/vol2.img
VOLSIZE=2G
# the second input: a 1.5 GiB ext4 image made mostly of a generated tree of small source files
SRC_VERSION=1
SRC_STAMP=$POOL/.inputs-src-v$SRC_VERSION
SRCVOL=$POOL/src.img
SRCVOL_SIZE=1536M
SRC_TREE_MIB=${SRC_TREE_MIB:-800}
# /usr trees copied into vol0 under /data (about 0.8 GB on the development machine)
TREES="/usr/lib/python3 /usr/lib/python3.11 /usr/include /usr/share/doc /usr/share/locale /usr/lib/gcc"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '\nBENCHMARK FAILED: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root (loop mounts, mkfs, mmdebstrap)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
for t in $TOOLS; do
  case $t in kiln|restic|borg|borg-fixed) ;; *) die "unknown tool '$t' in TOOLS";; esac
done
want() { [[ " $TOOLS " == *" $1 "* ]]; }
for c in mkfs.xfs mkfs.ext4 mmdebstrap losetup findmnt mountpoint cmp du; do
  command -v "$c" >/dev/null || die "missing command: $c"
done
[[ -x /usr/bin/time ]] || die "missing /usr/bin/time (apt-get install time)"
[[ -x $PY ]] || die "missing $PY"
want restic && { command -v restic >/dev/null || die "restic not installed"; }
if want borg || want borg-fixed; then command -v borg >/dev/null || die "borg not installed"; fi
if want kiln && [[ $INPUTS_ONLY != 1 ]]; then
  [[ -x $KILN ]] || die "kiln binary not found at $KILN
  build it with:  cmake -S $ROOT -B $ROOT/build && cmake --build $ROOT/build   (or: make -C $ROOT build)
  or measure only the peers with:  TOOLS=\"restic borg borg-fixed\" $0"
fi

# ----------------------------------------------------------------------------- mounts, cleanup
OUR_LOOPS=()     # loop devices attached by this script (detached on exit)
OUR_MOUNTS=()    # mount points mounted by this script, except the pool
POOL_DEV=""

loop_attach() {  # sets LOOP_DEV
  LOOP_DEV=$(losetup --find --show "$1")
  OUR_LOOPS+=("$LOOP_DEV")
}
loop_detach() {
  local dev=$1 i
  losetup -d "$dev" 2>/dev/null || true
  for i in $(seq 100); do   # loop release is asynchronous
    [[ -e /sys/block/${dev#/dev/}/loop/backing_file ]] || break
    sleep 0.05
  done
  local keep=()
  for i in "${OUR_LOOPS[@]}"; do [[ $i == "$dev" ]] || keep+=("$i"); done
  OUR_LOOPS=("${keep[@]}")
}
mount_img() {    # mount_img IMAGE DIR [mount options]; sets LOOP_DEV
  local img=$1 dir=$2 opts=${3:-}
  mkdir -p "$dir"
  loop_attach "$img"
  mount ${opts:+-o "$opts"} "$LOOP_DEV" "$dir"
  OUR_MOUNTS+=("$dir")
}
umount_img() {   # umount_img DIR DEV
  umount "$1"
  local keep=() m
  for m in "${OUR_MOUNTS[@]}"; do [[ $m == "$1" ]] || keep+=("$m"); done
  OUR_MOUNTS=("${keep[@]}")
  loop_detach "$2"
}

cleanup() {
  local rc=$? m d
  set +e
  for m in "${OUR_MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m"; done
  if [[ $KEEP_MOUNTED != 1 ]] && mountpoint -q "$POOL"; then
    [[ -n $POOL_DEV ]] || POOL_DEV=$(findmnt -n -o SOURCE --target "$POOL")
    umount "$POOL" || umount -l "$POOL"
    # detach the pool's loop device, but only if it is still bound to our pool image
    if [[ $POOL_DEV == /dev/loop* ]] && [[ $(losetup -n -O BACK-FILE "$POOL_DEV" 2>/dev/null) == "$POOL_IMG"* ]]; then
      OUR_LOOPS+=("$POOL_DEV")
    fi
    log "pool unmounted"
  fi
  for d in "${OUR_LOOPS[@]}"; do loop_detach "$d"; done
  [[ $rc -eq 0 ]] || printf 'exit status %s\n' "$rc" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_pool() {
  mkdir -p "$BENCH" "$CACHE" "$POOL"
  if [[ ! -f $POOL_IMG ]]; then
    log "creating XFS pool $POOL_IMG ($POOL_SIZE sparse, reflink=1)"
    truncate -s "$POOL_SIZE" "$POOL_IMG"
    mkfs.xfs -q -m reflink=1 "$POOL_IMG"
  fi
  if mountpoint -q "$POOL"; then
    POOL_DEV=$(findmnt -n -o SOURCE --target "$POOL")
  else
    POOL_DEV=$(losetup --find --show "$POOL_IMG")
    # the pool's loop device stays attached while mounted; cleanup() detaches it
    mount "$POOL_DEV" "$POOL" || { losetup -d "$POOL_DEV"; die "cannot mount $POOL_IMG"; }
    log "pool mounted at $POOL ($POOL_DEV)"
  fi
  [[ $(findmnt -n -o FSTYPE --target "$POOL") == xfs ]] || die "$POOL is not XFS"
  echo x > "$POOL/.reflink-test" && cp --reflink=always "$POOL/.reflink-test" "$POOL/.reflink-test2" \
    || die "reflink does not work on $POOL"
  rm -f "$POOL/.reflink-test" "$POOL/.reflink-test2"
}

# ----------------------------------------------------------------------------- inputs
make_inputs() {
  if [[ -f $STAMP && -f $VOL0 && -f $VOL1 && -f $VOL2 && -f $POOL/inputs.json ]]; then
    log "inputs cached in $POOL (delete $STAMP to rebuild)"
    return
  fi
  local t0=$EPOCHREALTIME
  log "building inputs"
  rm -f "$VOL0" "$VOL1" "$VOL2" "$POOL/inputs.json" "$POOL"/.inputs-v*
  if [[ ! -s $TARBALL ]]; then
    log "mmdebstrap --variant=minbase bookworm (cached as $TARBALL)"
    rm -rf "$TARBALL.part"
    mmdebstrap --variant=minbase --format=tar bookworm "$TARBALL.part" >"$CACHE/mmdebstrap.log" 2>&1 \
      || { tail -20 "$CACHE/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $CACHE/mmdebstrap.log)"; }
    mv "$TARBALL.part" "$TARBALL"
  fi

  log "vol0: 2 GiB sparse ext4: minbase root + /usr trees + 200 MiB random + 100 MiB zeros"
  truncate -s "$VOLSIZE" "$VOL0"
  mkfs.ext4 -F -q -L kilnvol "$VOL0"
  # noinit_itable: keep the ext4 lazy-init thread from zeroing inode tables (holes stay holes)
  mount_img "$VOL0" "$MNT" noinit_itable
  local dev0=$LOOP_DEV
  tar -xpf "$TARBALL" --numeric-owner -C "$MNT"
  mkdir -p "$MNT/data"
  local t
  for t in $TREES; do
    [[ -d $t ]] || { log "  (skipping missing $t)"; continue; }
    cp -a "$t" "$MNT/data/$(basename "$t")"
  done
  $PY "$HERE/inputs.py" random "$MNT/data/random.bin" 200 20261127
  dd if=/dev/zero of="$MNT/data/zeros.bin" bs=1M count=100 conv=fsync status=none
  df -h "$MNT" | tail -1 >&2
  sync
  umount_img "$MNT" "$dev0"

  log "vol1: reflink clone of vol0, ~1% changed through the filesystem"
  cp --reflink=always "$VOL0" "$VOL1"
  # noatime: the generator walks every directory to pick files; keep that walk from dirtying
  # inode tables (a workload would not read every directory)
  mount_img "$VOL1" "$MNT" noinit_itable,noatime
  local dev1=$LOOP_DEV
  $PY "$HERE/inputs.py" mutate-vol1 "$MNT" 1 | tee "$POOL/vol1-changes.json" >&2
  sync
  umount_img "$MNT" "$dev1"

  log "vol2: reflink clone of vol1, 1% of 4 KiB blocks overwritten in place"
  cp --reflink=always "$VOL1" "$VOL2"
  $PY "$HERE/inputs.py" scatter "$VOL2" 1 2 >&2
  sync

  log "analyzing inputs (content and FIEMAP differences)"
  $PY "$HERE/inputs.py" analyze "$POOL/inputs.json" "$VOL0:$VOL1" "$VOL1:$VOL2" >&2
  touch "$STAMP"
  sync
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f\n", b-a}' > "$POOL/inputs-build-seconds"
  log "inputs built in $(cat "$POOL/inputs-build-seconds") s"
}

make_src_input() {
  if [[ -f $SRC_STAMP && -f $SRCVOL && -f $POOL/inputs-src.json ]]; then
    log "source-tree input cached in $POOL (delete $SRC_STAMP to rebuild)"
    return
  fi
  local t0=$EPOCHREALTIME tree=$CACHE/srctree
  log "src.img: 1.5 GiB ext4 (mke2fs -d): ${SRC_TREE_MIB} MiB tree of small source files + 128 MiB random + 96 MiB zeros"
  rm -rf "$tree" "$SRCVOL" "$POOL/inputs-src.json" "$POOL"/.inputs-src-v*
  mkdir -p "$tree"
  $PY "$HERE/inputs.py" srctree "$tree/src" "$SRC_TREE_MIB" 20261206 > "$CACHE/srctree.json"
  $PY "$HERE/inputs.py" random "$tree/random.bin" 128 20261207
  truncate -s "$SRCVOL_SIZE" "$SRCVOL"
  # -i 4096: one inode per 4 KiB, enough for the many small files
  mkfs.ext4 -F -q -i 4096 -L kilnsrc -d "$tree" "$SRCVOL"
  rm -rf "$tree"
  # mke2fs -d leaves zero blocks out (holes); zeros written through the filesystem are data
  mount_img "$SRCVOL" "$MNT" noinit_itable
  local dev=$LOOP_DEV
  dd if=/dev/zero of="$MNT/zeros.bin" bs=1M count=96 conv=fsync status=none
  df -h "$MNT" | tail -1 >&2
  sync
  umount_img "$MNT" "$dev"
  $PY "$HERE/inputs.py" volume "$POOL/inputs-src.json" "$SRCVOL" "$CACHE/srctree.json" >&2
  touch "$SRC_STAMP"
  sync
  log "source-tree input built in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s"
}

print_inputs() {
  log "input volumes (apparent size / allocated):"
  local v
  for v in "$VOL0" "$VOL1" "$VOL2" "$SRCVOL"; do
    printf '  %-10s %s apparent, %s allocated\n' "$(basename "$v")" \
      "$(du -h --apparent-size "$v" | cut -f1)" "$(du -h "$v" | cut -f1)" >&2
  done
  $PY - "$POOL/inputs.json" >&2 <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for p in d["pairs"]:
    print("  %s -> %s: %d 4 KiB blocks differ (%.2f%%); FIEMAP differs on %d; missed by FIEMAP: %d"
          % (p["old"], p["new"], p["content_changed_blocks"],
             100.0 * p["content_changed_blocks"] / p["blocks"], p["fiemap_changed_blocks"],
             p["content_changed_not_in_fiemap"]))
EOF
}

ensure_pool
make_inputs
make_src_input
print_inputs
[[ $INPUTS_ONLY == 1 ]] && { log "INPUTS_ONLY=1: done"; exit 0; }

# ----------------------------------------------------------------------------- measurement
[[ $(findmnt -n -o FSTYPE --target "$BENCH") != xfs ]] || die "$BENCH must not be on XFS"
RES=$BENCH/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RES" "$REPOS" "$RESTORE"
RAW=$RES/raw.tsv
META=$RES/meta.tsv
printf 'run\ttool\tstep\twall_s\trss_kb\trepo_before\trepo_after\n' > "$RAW"
: > "$META"
meta() { printf '%s\t%s\n' "$1" "$2" >> "$META"; }
RUN=0
SRC=$POOL/src/vol.img
BENCH_T0=$EPOCHREALTIME

du_b() { du -sb "$1" | cut -f1; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.4f", b-a}'; }

# run_step TOOL STEP REPO CMD...   (REPO '-' = do not measure repository growth)
# Runs CMD after sync+settle under /usr/bin/time; appends a row to raw.tsv; stdout in $STEP_OUT.
run_step() {
  local tool=$1 step=$2 repo=$3; shift 3
  local base=$RES/r$RUN-$tool-$step
  STEP_OUT=$base.out
  sync; sleep "$SETTLE"
  local before=- after=- t0 t1 rc=0
  [[ $repo == - ]] || before=$(du_b "$repo")
  printf '%s\n' "$*" > "$base.cmd"
  t0=$EPOCHREALTIME
  /usr/bin/time -f %M -o "$base.rss" "$@" > "$base.out" 2> "$base.err" || rc=$?
  t1=$EPOCHREALTIME
  if [[ $rc -ne 0 ]]; then
    {
      printf '\n=== %s %s (run %s) failed with exit status %s\n' "$tool" "$step" "$RUN" "$rc"
      printf '$ %s\n' "$*"
      printf -- '--- stdout (last 30 lines of %s)\n' "$base.out"; tail -30 "$base.out"
      printf -- '--- stderr (last 30 lines of %s)\n' "$base.err"; tail -30 "$base.err"
      cat "$base.rss"
    } >&2
    die "$tool $step exited with status $rc"
  fi
  [[ $repo == - ]] || after=$(du_b "$repo")
  local wall rss
  wall=$(ms "$t0" "$t1")
  rss=$(tail -1 "$base.rss")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$RUN" "$tool" "$step" "$wall" "$rss" "$before" "$after" >> "$RAW"
  local grow=""
  [[ $repo == - ]] || grow=$(awk -v a="$before" -v b="$after" 'BEGIN{printf ", +%.1f MiB", (b-a)/1048576}')
  log "  $tool $step: ${wall} s, ${rss} KiB peak RSS$grow"
}

# Deleting repositories and restored files (GBs) between tools disturbs the next tool's timing
# (the root fs is mounted with online discard), so everything is deleted at the end of a run.
CLEAN_LATER=()
later() { CLEAN_LATER+=("$@"); }
clean_run() {
  ((${#CLEAN_LATER[@]} == 0)) || rm -rf -- "${CLEAN_LATER[@]}"
  CLEAN_LATER=()
  sync; sleep "$RUN_SETTLE"
}

hot() { cat "$1" > /dev/null; }   # page cache hot before each backup
point_src() { mkdir -p "$POOL/src"; rm -f "$SRC"; ln "$1" "$SRC"; hot "$SRC"; }

check_restore() {  # check_restore TOOL FILE EXPECTED
  local tool=$1 out=$2 want=$3
  [[ -f $out ]] || die "$tool restore produced no file at $out"
  local sz_out sz_want
  sz_out=$(stat -c %s "$out"); sz_want=$(stat -c %s "$want")
  if ! cmp "$out" "$want" > "$RES/r$RUN-$tool-cmp.txt" 2>&1; then
    cat "$RES/r$RUN-$tool-cmp.txt" >&2
    die "$tool restore of $(basename "$want") differs from the original: cmp $out $want (sizes $sz_out / $sz_want); restored file left in place"
  fi
  printf '%s\t%s\t%s\t%s\n' "$RUN" "$tool" "$(basename "$want")" \
    "$(du -B1 "$out" | cut -f1)" >> "$RES/restored-allocated.tsv"
  log "  $tool restore of $(basename "$want"): cmp OK ($(du -h "$out" | cut -f1) allocated)"
  later "$out"
}

snap_id() {  # last line of a kiln snapshot's stdout must be the id
  local id
  id=$(tail -1 "$1" | tr -d '[:space:]')
  [[ $id =~ ^snap-[0-9A-Za-z]+$ ]] || {
    printf -- '--- stdout of kiln snapshot (%s):\n' "$1" >&2; cat "$1" >&2
    die "kiln snapshot did not print a snapshot id (snap-...) on stdout"; }
  printf '%s' "$id"
}

bench_kiln() {
  local A=$REPOS/kiln-scan B=$REPOS/kiln-shadow S0 S1 S2 T0 T1 T2
  rm -rf "$A" "$B"
  # scan mode: each snapshot reads the whole volume and compares against the parent
  "$KILN" store init "$A" > "$RES/r$RUN-kiln-init.out" 2>&1 || { cat "$RES/r$RUN-kiln-init.out" >&2; die "kiln store init $A failed"; }
  hot "$VOL0"; run_step kiln full "$A" "$KILN" store snapshot "$A" "$VOL0"; S0=$(snap_id "$STEP_OUT")
  hot "$VOL1"; run_step kiln vol1 "$A" "$KILN" store snapshot "$A" "$VOL1" --parent "$S0"; S1=$(snap_id "$STEP_OUT")
  hot "$VOL2"; run_step kiln vol2 "$A" "$KILN" store snapshot "$A" "$VOL2" --parent "$S1"; S2=$(snap_id "$STEP_OUT")
  rm -f "$RESTORE/kiln-vol1.img"
  run_step kiln restore - "$KILN" store restore "$A" "$S1" "$RESTORE/kiln-vol1.img"
  check_restore kiln "$RESTORE/kiln-vol1.img" "$VOL1"
  "$KILN" store stats "$A" --json > "$RES/r$RUN-kiln-scan-stats.json" 2> "$RES/r$RUN-kiln-scan-stats.err" \
    || { cat "$RES/r$RUN-kiln-scan-stats.err" >&2; die "kiln store stats $A --json failed"; }
  $PY -c 'import json,sys; json.load(open(sys.argv[1]))' "$RES/r$RUN-kiln-scan-stats.json" \
    || die "kiln store stats --json printed invalid JSON ($RES/r$RUN-kiln-scan-stats.json)"
  run_step kiln verify - "$KILN" store verify "$A"

  # shadow mode: a separate store with the vol0 snapshot; changed blocks come from FIEMAP of the
  # volume against a reflink shadow taken at the parent snapshot. The shadows are fresh reflink
  # copies so kiln can never alter the cached inputs.
  local SH0=$POOL/shadow-vol0.img SH1=$POOL/shadow-vol1.img SHN=$POOL/shadow-vol1-null.img
  rm -f "$SH0" "$SH1" "$SHN"
  cp --reflink=always "$VOL0" "$SH0"; cp --reflink=always "$VOL1" "$SH1"; cp --reflink=always "$VOL1" "$SHN"
  "$KILN" store init "$B" > "$RES/r$RUN-kiln-init-b.out" 2>&1 || { cat "$RES/r$RUN-kiln-init-b.out" >&2; die "kiln store init $B failed"; }
  hot "$VOL0"; run_step kiln full_b "$B" "$KILN" store snapshot "$B" "$VOL0"; T0=$(snap_id "$STEP_OUT")
  hot "$VOL1"; run_step kiln vol1_shadow "$B" "$KILN" store snapshot "$B" "$VOL1" --parent "$T0" --shadow "$SH0"; T1=$(snap_id "$STEP_OUT")
  hot "$VOL2"; run_step kiln vol2_shadow "$B" "$KILN" store snapshot "$B" "$VOL2" --parent "$T1" --shadow "$SH1"; T2=$(snap_id "$STEP_OUT")
  # no-change shadow snapshot: vol1 again against an untouched reflink of itself = fixed cost + commit
  hot "$VOL1"; run_step kiln null_shadow "$B" "$KILN" store snapshot "$B" "$VOL1" --parent "$T1" --shadow "$SHN"
  snap_id "$STEP_OUT" > /dev/null
  rm -f "$RESTORE/kiln-b-vol1.img" "$RESTORE/kiln-b-vol2.img"
  run_step kiln check_restore_shadow_vol1 - "$KILN" store restore "$B" "$T1" "$RESTORE/kiln-b-vol1.img"
  check_restore kiln-shadow "$RESTORE/kiln-b-vol1.img" "$VOL1"
  run_step kiln check_restore_shadow_vol2 - "$KILN" store restore "$B" "$T2" "$RESTORE/kiln-b-vol2.img"
  check_restore kiln-shadow "$RESTORE/kiln-b-vol2.img" "$VOL2"
  "$KILN" store stats "$B" --json > "$RES/r$RUN-kiln-shadow-stats.json" 2> "$RES/r$RUN-kiln-shadow-stats.err" \
    || { cat "$RES/r$RUN-kiln-shadow-stats.err" >&2; die "kiln store stats $B --json failed"; }
  run_step kiln verify_b - "$KILN" store verify "$B"
  later "$SH0" "$SH1" "$SHN" "$A" "$B"

  # the source-tree input: a full snapshot into a fresh store, restored and compared
  local C=$REPOS/kiln-src U0
  rm -rf "$C"
  "$KILN" store init "$C" > "$RES/r$RUN-kiln-init-c.out" 2>&1 || { cat "$RES/r$RUN-kiln-init-c.out" >&2; die "kiln store init $C failed"; }
  hot "$SRCVOL"; run_step kiln full_src "$C" "$KILN" store snapshot "$C" "$SRCVOL"; U0=$(snap_id "$STEP_OUT")
  rm -f "$RESTORE/kiln-src.img"
  run_step kiln restore_src - "$KILN" store restore "$C" "$U0" "$RESTORE/kiln-src.img"
  check_restore kiln "$RESTORE/kiln-src.img" "$SRCVOL"
  "$KILN" store stats "$C" --json > "$RES/r$RUN-kiln-src-stats.json" 2> "$RES/r$RUN-kiln-src-stats.err" \
    || { cat "$RES/r$RUN-kiln-src-stats.err" >&2; die "kiln store stats $C --json failed"; }
  later "$C"
}

bench_restic() {
  local R=$REPOS/restic
  rm -rf "$R" "$REPOS/restic-cache" "$RESTORE/restic"
  export RESTIC_REPOSITORY=$R RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$REPOS/restic-cache
  restic init --repository-version 2 > "$RES/r$RUN-restic-init.out" 2>&1 \
    || { cat "$RES/r$RUN-restic-init.out" >&2; die "restic init failed"; }
  local step v
  for step in full vol1 vol2; do
    case $step in full) v=$VOL0;; vol1) v=$VOL1;; vol2) v=$VOL2;; esac
    point_src "$v"
    run_step restic "$step" "$R" env -C "$POOL" restic backup --compression auto --host bench \
      --tag "$(basename "$v" .img)" src
  done
  mkdir -p "$RESTORE/restic"
  run_step restic restore - restic restore latest --host bench --tag vol1 --target "$RESTORE/restic"
  check_restore restic "$(find "$RESTORE/restic" -type f -name vol.img | head -1)" "$VOL1"
  later "$R" "$REPOS/restic-cache" "$RESTORE/restic"
  # the source-tree input, full backup into a fresh repository
  R=$REPOS/restic-src
  rm -rf "$R" "$REPOS/restic-src-cache"
  export RESTIC_REPOSITORY=$R RESTIC_CACHE_DIR=$REPOS/restic-src-cache
  restic init --repository-version 2 > "$RES/r$RUN-restic-init-src.out" 2>&1 \
    || { cat "$RES/r$RUN-restic-init-src.out" >&2; die "restic init failed"; }
  point_src "$SRCVOL"
  run_step restic full_src "$R" env -C "$POOL" restic backup --compression auto --host bench --tag src src
  later "$R" "$REPOS/restic-src-cache"
  unset RESTIC_REPOSITORY RESTIC_PASSWORD RESTIC_CACHE_DIR
}

bench_borg() {  # bench_borg TOOLNAME [extra create args]
  local tool=$1; shift
  local R=$REPOS/$tool
  rm -rf "$R" "$REPOS/$tool-base" "$RESTORE/$tool"
  export BORG_REPO=$R BORG_BASE_DIR=$REPOS/$tool-base \
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
  borg init -e none > "$RES/r$RUN-$tool-init.out" 2>&1 \
    || { cat "$RES/r$RUN-$tool-init.out" >&2; die "borg init failed"; }
  local step v
  for step in full vol1 vol2; do
    case $step in full) v=$VOL0;; vol1) v=$VOL1;; vol2) v=$VOL2;; esac
    point_src "$v"
    run_step "$tool" "$step" "$R" env -C "$POOL" borg create "$@" "::$(basename "$v" .img)" src
  done
  mkdir -p "$RESTORE/$tool"
  run_step "$tool" restore - env -C "$RESTORE/$tool" borg extract --sparse ::vol1
  check_restore "$tool" "$RESTORE/$tool/src/vol.img" "$VOL1"
  later "$R" "$REPOS/$tool-base" "$RESTORE/$tool"
  # the source-tree input, full backup into a fresh repository
  R=$REPOS/$tool-src
  rm -rf "$R" "$REPOS/$tool-src-base"
  export BORG_REPO=$R BORG_BASE_DIR=$REPOS/$tool-src-base
  borg init -e none > "$RES/r$RUN-$tool-init-src.out" 2>&1 \
    || { cat "$RES/r$RUN-$tool-init-src.out" >&2; die "borg init failed"; }
  point_src "$SRCVOL"
  run_step "$tool" full_src "$R" env -C "$POOL" borg create "$@" ::src src
  later "$R" "$REPOS/$tool-src-base"
  unset BORG_REPO BORG_BASE_DIR
}

# inputs must not change while we measure
$PY "$HERE/inputs.py" fingerprint "$VOL0" "$VOL1" "$VOL2" "$SRCVOL" > "$RES/inputs-fingerprint.before"
cp "$POOL/inputs-src.json" "$RES/inputs-src.json"

meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta nproc "$(nproc)"
meta kernel "$(uname -r)"
meta cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta mem "$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
meta runs "$RUNS"
meta tools "$TOOLS"
meta settle "$SETTLE"
meta inputs_build_seconds "$(cat "$POOL/inputs-build-seconds" 2>/dev/null || echo '?')"
meta results_dir "$RES"
want restic && meta version_restic "$(restic version | head -1)"
if want borg || want borg-fixed; then meta version_borg "$(borg --version)"; fi
if want kiln; then
  # measure a private copy, so a rebuild of build/kiln during the run cannot mix versions
  cp "$KILN" "$RES/kiln"
  KILN_SRC=$KILN
  KILN=$RES/kiln
  kv=$(timeout 5 "$KILN" --version 2>/dev/null | head -1 || true)
  if git_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
    git_rev="git $git_rev, $(git -C "$ROOT" status --porcelain -- src 2>/dev/null | wc -l) changed paths under src/"
  else
    git_rev="git: no commit yet (working tree)"
  fi
  meta version_kiln "${kv:-kiln (no --version)}; $git_rev; binary sha256 $(sha256sum "$KILN" | cut -c1-12), built $(date -u -r "$KILN_SRC" '+%Y-%m-%d %H:%M UTC')"
fi
log "results go to $RES"
rm -rf -- "${REPOS:?}"/* "${RESTORE:?}"/*    # leftovers of an aborted run
sync; sleep "$RUN_SETTLE"

for RUN in $(seq "$RUNS"); do
  meta "loadavg_start_$RUN" "$(cut -d' ' -f1-3 /proc/loadavg)"
  log "run $RUN/$RUNS (load $(cut -d' ' -f1-3 /proc/loadavg))"
  for t in $TOOLS; do
    case $t in
      kiln) bench_kiln ;;
      restic) bench_restic ;;
      borg) bench_borg borg ;;
      borg-fixed) bench_borg borg-fixed --chunker-params fixed,4194304 --sparse ;;
    esac
  done
  meta "loadavg_end_$RUN" "$(cut -d' ' -f1-3 /proc/loadavg)"
  clean_run
  $PY "$HERE/inputs.py" fingerprint "$VOL0" "$VOL1" "$VOL2" "$SRCVOL" > "$RES/inputs-fingerprint.after"
  cmp -s "$RES/inputs-fingerprint.before" "$RES/inputs-fingerprint.after" || {
    diff "$RES/inputs-fingerprint.before" "$RES/inputs-fingerprint.after" >&2 || true
    die "an input volume changed during run $RUN (size, mtime or extents)"; }
done
rm -f "$SRC"
meta run_seconds "$(ms "$BENCH_T0" "$EPOCHREALTIME")"
log "measurements done in $(ms "$BENCH_T0" "$EPOCHREALTIME") s"

if [[ $NO_REPORT == 1 ]]; then
  $PY "$HERE/report.py" "$RES" "$POOL/inputs.json" -
else
  $PY "$HERE/report.py" "$RES" "$POOL/inputs.json" "$RESULTS_MD"
  log "wrote section '## Block store (bench/store)' of $RESULTS_MD"
fi
