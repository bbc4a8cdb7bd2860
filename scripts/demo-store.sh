#!/usr/bin/env bash
# The block store end to end on a real ext4 volume: full snapshot, a change through the
# filesystem, incremental snapshots (by scan and by reflink shadow), restores checked with cmp,
# verify, delete and gc; then real instances: boot busybox with user data, stop it, snapshot its
# volume, restore it as a new volume and boot that. Needs root. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-$PWD/build/kiln}
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it loop-mounts a volume)" >&2; exit 1; }
[ -x "$KILN" ] || { echo "demo: $KILN is missing; run 'make build'" >&2; exit 1; }

work=$(mktemp -d /var/tmp/kiln-demo.XXXXXX)
pool=$work/pool
cleanup() {
	set +e
	mountpoint -q "$work/mnt" && umount "$work/mnt"
	[ -d "$work/run" ] && "$KILN" down --run "$work/run" >/dev/null
	mountpoint -q "$pool" && umount "$pool"
	rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
took() { printf '%.3f s' "$(echo "$(now) - $1" | bc -l)"; }

step "a reflink-capable pool: a 4 GiB sparse XFS file, loop-mounted"
mkdir -p "$pool" "$work/mnt"
truncate -s 4G "$work/pool.xfs"
mkfs.xfs -q -m reflink=1 "$work/pool.xfs"
mount -o loop "$work/pool.xfs" "$pool"

step "a 1 GiB ext4 volume with real files"
vol=$pool/vol.img
truncate -s 1G "$vol"
mkfs.ext4 -q -F "$vol"
mount -o loop "$vol" "$work/mnt"
cp -a /usr/include "$work/mnt/include"
cp -a /usr/share/doc "$work/mnt/doc" 2>/dev/null || true
head -c 64M /dev/urandom >"$work/mnt/random.bin"
umount "$work/mnt"
echo "volume: $(du -h --apparent-size "$vol" | cut -f1) with $(du -h "$vol" | cut -f1) allocated"

step "kiln store init"
store=$work/store
"$KILN" store init "$store"

step "full snapshot"
t=$(now); s1=$("$KILN" store snapshot "$store" "$vol"); echo "$s1 in $(took "$t")"
cp --reflink=always "$vol" "$pool/vol.shadow"   # what the pool keeps for the next increment
cp --sparse=always "$vol" "$work/vol-v1.img"     # for checking the restore later

step "change about 1% through the filesystem"
mount -o loop "$vol" "$work/mnt"
mapfile -t headers < <(find "$work/mnt/include" -name '*.h' | sort | head -300)
for f in "${headers[@]}"; do echo "// changed" >>"$f"; done
head -c 8M /dev/urandom >"$work/mnt/new-package.bin"
rm -rf "$work/mnt/doc/"[a-c]* 2>/dev/null || true
umount "$work/mnt"

step "incremental snapshot, scanning the volume"
t=$(now); s2=$("$KILN" store snapshot "$store" "$vol" --parent "$s1"); echo "$s2 in $(took "$t")"
step "incremental snapshot, from the extents that moved since the shadow (FIEMAP)"
t=$(now); s3=$("$KILN" store snapshot "$store" "$vol" --parent "$s1" --shadow "$pool/vol.shadow"); echo "$s3 in $(took "$t")"

step "restore all three and compare byte for byte"
for s in "$s1" "$s2" "$s3"; do
	t=$(now); "$KILN" store restore "$store" "$s" "$work/restored.img"; echo "$s restored in $(took "$t")"
	if [ "$s" = "$s1" ]; then cmp "$work/vol-v1.img" "$work/restored.img"; else cmp "$vol" "$work/restored.img"; fi
	echo "  identical to the volume at snapshot time"
done

step "what the store holds"
"$KILN" store ls "$store"
echo
"$KILN" store stats "$store"

step "verify rereads and rehashes every chunk"
"$KILN" store verify "$store"

step "delete the first snapshot and collect garbage"
"$KILN" store delete "$store" "$s1"
"$KILN" store gc "$store"
"$KILN" store verify "$store"
"$KILN" store restore "$store" "$s3" "$work/restored.img" && cmp "$vol" "$work/restored.img"

step "an instance: busybox booted from its own root volume (namespaces, cgroups, a veth)"
"$KILN" host up
images/busybox/build.sh "$work/busybox-root" >/dev/null
"$KILN" image import "$work/busybox-root" --pool "$pool" --name busybox.img --size 256M
"$KILN" pool clone "$pool" "$pool/busybox.img" web.img
printf '#!/bin/sh\nmkdir -p /var/www\necho "baked at $(date -u +%%T) on $(hostname)" > /var/www/index.html\n' >"$work/ud"
t=$(now)
iid=$("$KILN" runtime run "$work/run" --volume "$pool/web.img" --address 172.31.250.10/24 \
	--gateway 172.31.250.1 --bridge kb-demo-0 --type t2.micro --user-data "$work/ud")
echo "$iid running in $(took "$t")"
until "$KILN" runtime console "$work/run" "$iid" | grep -q "kiln-init: ready"; do sleep 0.05; done
"$KILN" runtime console "$work/run" "$iid"
echo "inside: $("$KILN" runtime exec "$work/run" "$iid" -- cat /var/www/index.html)"

step "stop it, snapshot its root volume into the store, restore it as a new volume, boot that"
"$KILN" runtime stop "$work/run" "$iid"
t=$(now); s4=$("$KILN" store snapshot "$store" "$pool/web.img"); echo "$s4 in $(took "$t")"
"$KILN" store restore "$store" "$s4" "$pool/copy.img"
iid2=$("$KILN" runtime run "$work/run" --volume "$pool/copy.img" --address 172.31.250.11/24 \
	--gateway 172.31.250.1 --bridge kb-demo-0 --type t2.micro)
until "$KILN" runtime console "$work/run" "$iid2" | grep -q "kiln-init: ready"; do sleep 0.05; done
echo "the copy serves what the first one wrote: $("$KILN" runtime exec "$work/run" "$iid2" -- cat /var/www/index.html)"
echo "and reaches the first by its private address:"
"$KILN" runtime start "$work/run" "$iid"
"$KILN" runtime exec "$work/run" "$iid2" -- ping -c 1 -W 2 172.31.250.10
"$KILN" runtime status "$work/run"
"$KILN" runtime stop "$work/run" "$iid"
"$KILN" runtime stop "$work/run" "$iid2"
echo
echo "demo: done"
