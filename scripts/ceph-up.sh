#!/bin/sh
# Start a one-node Ceph cluster (mon, OSD on a bluestore file, radosgw on 127.0.0.1) under DIR
# for the S3 backend's tests: Debian's packages, installed when missing; auth none; an S3 user
# whose keys go to DIR/env (AWS_ACCESS_KEY_ID=..., AWS_SECRET_ACCESS_KEY=..., KILN_S3_ENDPOINT=...).
# Usage: scripts/ceph-up.sh DIR [PORT]. Stop it with scripts/ceph-down.sh DIR.
# Recipe and measurements: docs/design/object-store.md (from the research note on Ceph RGW 16.2).
set -eu
B=$(realpath -m "${1:?usage: ceph-up.sh DIR [PORT]}")
PORT=${2:-7480}
pkgs="ceph-mon ceph-osd radosgw ceph-common"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "ceph-up: missing packages:$missing (install them as root)" >&2
		exit 2
	fi
	echo "ceph-up: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; }
fi
export CEPH_CONF="$B/ceph.conf"
rm -rf "$B"
mkdir -p "$B/run" "$B/log" "$B/mon/ceph-a" "$B/osd" "$B/rgw"
FSID=$(cat /proc/sys/kernel/random/uuid)
MONPORT=$((PORT + 1))
cat >"$CEPH_CONF" <<CONF
[global]
fsid = $FSID
mon_host = v2:127.0.0.1:$MONPORT
public_network = 127.0.0.0/8
ms_bind_msgr1 = false
ms_bind_ipv6 = false
ms_mon_client_mode = crc
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = $B/run
admin_socket = $B/run/\$name.asok
log_file = $B/log/\$name.log
pid_file = $B/run/\$name.pid
keyring = $B/keyring
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 1
mon_data_avail_crit = 0
mon_warn_on_insecure_global_id_reclaim_allowed = false
[mon]
mon_data = $B/mon/ceph-\$id
[osd]
osd_data = $B/osd/ceph-\$id
osd_objectstore = bluestore
bluestore_block_size = 10737418240
osd_memory_target = 939524096
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$PORT
rgw_data = $B/rgw
rgw_dns_name = 127.0.0.1
CONF
# mkfs wants a keyring even with auth none
ceph-authtool --create-keyring "$B/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$B/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
	--cap mgr 'allow *' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MONPORT]" "$B/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$B/monmap" --keyring "$B/keyring"
ceph-mon -i a
U=$(cat /proc/sys/kernel/random/uuid)
ID=$(timeout 60 ceph osd new "$U")
mkdir -p "$B/osd/ceph-$ID"
ceph-osd -i "$ID" --mkfs --osd-uuid "$U" >"$B/log/osd-mkfs.log" 2>&1
ceph-osd -i "$ID"
n=0
until timeout 10 ceph osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'; do
	n=$((n + 1)); [ $n -lt 60 ] || { echo "ceph-up: the OSD did not come up" >&2; exit 1; }
	sleep 1
done
radosgw -n client.rgw.a
n=0
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/"; do
	n=$((n + 1)); [ $n -lt 120 ] || { echo "ceph-up: radosgw did not answer" >&2; exit 1; }
	sleep 1
done
KEY=KILNTESTACCESSKEY001
SECRET=$(head -c 30 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 40)
radosgw-admin user create --uid=kiln --display-name=kiln --access-key="$KEY" \
	--secret="$SECRET" >/dev/null
umask 077
cat >"$B/env" <<ENV
AWS_ACCESS_KEY_ID=$KEY
AWS_SECRET_ACCESS_KEY=$SECRET
KILN_S3_ENDPOINT=http://127.0.0.1:$PORT
ENV
echo "ceph-up: radosgw on 127.0.0.1:$PORT, keys in $B/env" >&2
