#!/bin/sh
# Build the busybox base image: Debian's static busybox with a relative symlink per applet, and
# the layout kiln-init expects. A directory, or a tarball when OUT ends in .tar. Takes a second.
# usage: images/busybox/build.sh OUT_DIR | OUT.tar   (KILN_BUSYBOX overrides /bin/busybox)
set -eu

out=${1:?usage: images/busybox/build.sh OUT_DIR|OUT.tar}
out=${out%/}
bb=${KILN_BUSYBOX:-/bin/busybox}

fail() {
	echo "busybox: $*" >&2
	exit 1
}

[ -x "$bb" ] || fail "'$bb' is missing (apt-get install busybox-static)"
# A dynamically linked busybox (Debian's "busybox" package) would need the host's libc inside.
if command -v readelf >/dev/null && readelf -l "$bb" 2>/dev/null | grep -q INTERP; then
	fail "'$bb' is not statically linked (apt-get install busybox-static)"
fi
version=$("$bb" 2>/dev/null | sed -n '1s/^BusyBox v\([^ ]*\).*/\1/p')
[ -n "$version" ] || fail "cannot tell the version of '$bb'"

# A directory output replaces only an earlier image of ours, never an unrelated directory.
if [ -e "$out" ] && [ "${out%.tar}" = "$out" ]; then
	grep -qx 'ID=busybox-kiln' "$out/etc/os-release" 2>/dev/null ||
		fail "'$out' exists and is not a busybox-kiln root: refusing to replace it"
fi

mkdir -p "$(dirname "$out")"
root=$(mktemp -d "$(dirname "$out")/.busybox-root.XXXXXX")
trap 'rm -rf "$root"' EXIT INT TERM

mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc/kiln/rc.d" \
	"$root/root" "$root/home" "$root/tmp" "$root/var/lib/kiln" "$root/var/log" \
	"$root/var/tmp" "$root/dev" "$root/proc" "$root/sys" "$root/run" "$root/mnt"
chmod 0755 "$root"
chmod 0700 "$root/root"
chmod 1777 "$root/tmp" "$root/var/tmp"
cp "$bb" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"

# `busybox --install -s` would point every link at the host's path of the binary; these links
# are relative, so the root works wherever it is mounted.
"$bb" --list-full | while read -r applet; do
	case "$applet" in
	*/*) ;;
	*) continue ;; # linuxrc: initrd only
	esac
	case "${applet%/*}" in
	bin) target=busybox ;;
	sbin) target=../bin/busybox ;;
	*) target=../../bin/busybox ;; # usr/bin, usr/sbin
	esac
	[ -e "$root/$applet" ] || ln -s "$target" "$root/$applet"
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
tty:x:5:
wheel:x:10:root
nogroup:x:65534:
EOF
# Passwords are locked: instances are reached with keys only.
cat >"$root/etc/shadow" <<'EOF'
root:*:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
chmod 0600 "$root/etc/shadow"
echo busybox >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
cat >"$root/etc/os-release" <<EOF
NAME="BusyBox"
ID=busybox-kiln
VERSION_ID=$version
PRETTY_NAME="BusyBox $version (kiln)"
HOME_URL="https://busybox.net/"
EOF
cat >"$root/etc/profile" <<'EOF'
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PS1='\u@\h:\w\$ '
EOF

case "$out" in
*.tar)
	tar -C "$root" --numeric-owner --owner=0 --group=0 --sort=name -cf "$out.tmp.$$" .
	mv "$out.tmp.$$" "$out"
	;;
*)
	rm -rf "$out"
	mv "$root" "$out"
	;;
esac
echo "busybox: built '$out' (BusyBox $version)"
