#!/bin/sh
# Stop the cluster scripts/ceph-up.sh started under DIR: each daemon by the pid in its pid file,
# radosgw first, the mon last (so the OSD does not wait for it). Usage: ceph-down.sh DIR [--purge]
set -u
B=$(realpath -m "${1:?usage: ceph-down.sh DIR [--purge]}")
for name in client.rgw.a osd.0 osd.1 mgr.x mon.a; do
	f="$B/run/$name.pid"
	[ -f "$f" ] || continue
	pid=$(cat "$f")
	kill "$pid" 2>/dev/null || continue
	n=0
	while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$f"
done
[ "${2:-}" = "--purge" ] && rm -rf "$B"
exit 0
