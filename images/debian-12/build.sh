#!/bin/sh
# Build the debian-12 base image: Debian bookworm (minbase) with OpenSSH, sudo and cloud-init, as a
# tarball that `kiln image import` turns into a root volume. Host keys are left out: kiln-init
# makes them at each instance's first boot. cloud-init (files/: its configuration, the rc.d entry
# that runs its stages, the marker telling kiln-init to leave it the user data and the key pair)
# reads the metadata service and creates the login user `admin` (passwordless sudo) with the key
# pair, as in Debian's own AWS images. Cached: an OUT newer than this script and files/ is kept
# (KILN_REBUILD=1 forces).
# usage: images/debian-12/build.sh OUT.tar
set -eu

out=${1:?usage: images/debian-12/build.sh OUT.tar}
case "$out" in
*.tar) ;;
*)
	echo "debian-12: output must end in .tar: '$out'" >&2
	exit 2
	;;
esac
script=$(readlink -f "$0")
files=$(dirname "$script")/files
stale=0
for f in "$script" "$files"/*; do
	[ "$out" -nt "$f" ] || stale=1
done
if [ -s "$out" ] && [ "$stale" = 0 ] && [ "${KILN_REBUILD:-0}" = 0 ]; then
	echo "debian-12: '$out' is up to date"
	exit 0
fi
command -v mmdebstrap >/dev/null || {
	echo "debian-12: mmdebstrap is missing (apt-get install mmdebstrap)" >&2
	exit 1
}

mirror=${KILN_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${KILN_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
mkdir -p "$(dirname "$out")"
tmp="${out%.tar}.tmp.$$.tar"
trap 'rm -f "$tmp"' EXIT INT TERM

# Lean on purpose: sshd (and sftp-server, which scp and Packer use), CA certificates, the
# everyday ip/ss/ps tools, and cloud-init (with python3 and what its Depends name). Recommends
# are not installed (mmdebstrap's default); man pages, docs (except copyrights) and translations
# are never unpacked. The merged-usr hook makes /bin, /lib ... links as debootstrap does; without
# it the usrmerge package drags in all of perl (50 MB).
start=$(date +%s)
mmdebstrap --variant=minbase --format=tar \
	--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
	--include=openssh-server,openssh-sftp-server,sudo,ca-certificates,iproute2,procps,netbase,cloud-init \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/lintian/*' \
	--customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
	--customize-hook='rm -f "$1"/etc/resolv.conf' \
	--customize-hook='echo debian > "$1"/etc/hostname' \
	--customize-hook='printf "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n" > "$1"/etc/hosts' \
	--customize-hook='mkdir -p "$1"/etc/kiln/rc.d "$1"/var/lib/kiln' \
	--customize-hook='printf "# kiln: the login user (admin) logs in with a key only; root not at all.\nPermitRootLogin no\nPasswordAuthentication no\n" > "$1"/etc/ssh/sshd_config.d/kiln.conf' \
	--customize-hook="copy-in $files/99_kiln.cfg /etc/cloud/cloud.cfg.d" \
	--customize-hook="upload $files/cloud-init.rc /etc/kiln/rc.d/50-cloud-init" \
	--customize-hook="upload $files/cloud-init.marker /etc/kiln/cloud-init" \
	--customize-hook='chmod 0755 "$1"/etc/kiln/rc.d/50-cloud-init && chmod 0644 "$1"/etc/kiln/cloud-init "$1"/etc/cloud/cloud.cfg.d/99_kiln.cfg' \
	--customize-hook='sed -i "s/^session\s\+required\s\+pam_loginuid.so/session optional pam_loginuid.so/" "$1"/etc/pam.d/sshd' \
	--customize-hook='rm -rf "$1"/var/lib/cloud "$1"/var/log/cloud-init*.log "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old "$1"/var/cache/ldconfig/aux-cache' \
	bookworm "$tmp" \
	"deb $mirror bookworm main" \
	"deb $mirror bookworm-updates main" \
	"deb $security bookworm-security main"
mv "$tmp" "$out"
trap - EXIT INT TERM
echo "debian-12: built '$out' ($(du -h "$out" | cut -f1)) in $(($(date +%s) - start)) s"
