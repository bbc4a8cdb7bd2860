#!/usr/bin/env bash
# The machine-image workflow end to end, with the aws CLI (v2) against a real `kiln serve`:
# launch the debian-12 base image in us-east-1a, customize it with user data (install and enable
# a web server, write a page), stop it, create an image, launch that in us-east-1b and fetch the
# page from the new instance's public address (port 80 opened in the default security group); copy the image to eu-west-1 and launch it there;
# share it with a second account, which launches it; print the timings; clean everything up.
# Needs root (instances are real). `make demo` builds and installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=demo KILN=${KILN:-$PWD/build/kiln} AWS_BIN=/usr/bin/aws
. scripts/demo-lib.sh
demo_need debian-12.tar "'make images' needs Debian's mirror"

work=$(mktemp -d /var/tmp/kiln-demo.XXXXXX)
data=$work/data
port=${KILN_DEMO_PORT:-8779}
url=http://127.0.0.1:$port
serve_pid=
cleanup() {
	set +e
	if [ -n "$serve_pid" ]; then
		for r in us-east-1 eu-west-1; do
			for p in default friend; do
				ids=$(aws_as "$p" "$r" ec2 describe-instances --query 'Reservations[].Instances[].InstanceId' --output text 2>/dev/null)
				[ -n "$ids" ] && aws_as "$p" "$r" ec2 terminate-instances --instance-ids $ids >/dev/null 2>&1
			done
		done
		sleep 1
		kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null
	fi
	"$KILN" down --data "$data" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

export AWS_SHARED_CREDENTIALS_FILE=$data/credentials AWS_CONFIG_FILE=$data/config AWS_PAGER=""
aws_as() { local profile=$1 region=$2; shift 2; "$AWS_BIN" --profile "$profile" --region "$region" --endpoint-url "$url" "$@"; }
ec2() { aws_as default us-east-1 ec2 "$@"; }
# Wait until the page answers at an address (the instance's web server is up); give up at once
# when the instance's user data failed (its console says so).
wait_page() {
	local ip=$1 console=$data/run/$2/console.log t=0
	until curl -s --max-time 1 "http://$ip/" >"$work/page" 2>/dev/null && grep -q kiln "$work/page"; do
		if grep -q "user-data exited with status [1-9]" "$console" 2>/dev/null; then
			echo "demo: the user data of $2 failed; its console:" >&2
			tail -25 "$console" >&2
			return 1
		fi
		t=$((t + 1))
		[ $t -lt 600 ] || { echo "demo: no page at http://$ip/ after 5 minutes" >&2; return 1; }
		sleep 0.5
	done
}
# Wait until an instance or an image reaches a state, polling every half second: the aws CLI's
# waiters poll every 15 s, which would time their own sleep rather than kiln's work.
# wait_state PROFILE REGION instance|image ID STATE
wait_state() {
	local query state t=0
	case $3 in
	instance) query=(describe-instances --instance-ids "$4" --query 'Reservations[0].Instances[0].State.Name') ;;
	image) query=(describe-images --image-ids "$4" --query 'Images[0].State') ;;
	esac
	while :; do
		state=$(aws_as "$1" "$2" ec2 "${query[@]}" --output text) || return 1
		[ "$state" != "$5" ] || return 0
		case $state in pending | stopping) ;; *) echo "demo: $4 is $state, not $5" >&2; return 1 ;; esac
		t=$((t + 1))
		[ $t -lt 600 ] || { echo "demo: $4 not $5 after 5 minutes" >&2; return 1; }
		sleep 0.5
	done
}
ip_of() { aws_as "$1" "$2" ec2 describe-instances --instance-ids "$3" --query 'Reservations[0].Instances[0].PublicIpAddress' --output text; }

step "a data directory, a second account, and the daemon"
# Whatever answers on the port would get the demo's requests: refuse rather than talk to it.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	echo "demo: port $port is taken by another program; set KILN_DEMO_PORT to a free one" >&2
	exit 1
fi
"$KILN" init --data "$data" >/dev/null
"$KILN" account create friend --account-id 222233334444 --data "$data" >"$work/friend"
{ printf '\n[friend]\n'; grep '^aws_' "$work/friend"; } >>"$data/credentials"
"$KILN" serve --data "$data" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do
	kill -0 "$serve_pid" 2>/dev/null || { echo "demo: kiln serve stopped:" >&2; cat "$work/serve.log" >&2; serve_pid=; exit 1; }
	curl -s "$url" >/dev/null 2>&1 && break
	sleep 0.1
done
# Like EC2, a default security group lets in only its own members: open the web port to the world
# (here: the host) where the demo's instances run.
for pr in "default us-east-1" "default eu-west-1" "friend us-east-1"; do
	aws_as $pr ec2 authorize-security-group-ingress --group-name default --protocol tcp --port 80 \
		--cidr 0.0.0.0/0 >/dev/null
done
base=$(ec2 describe-images --owners amazon --filters Name=name,Values=kiln-debian-12 --query 'Images[0].ImageId' --output text)
echo "debian-12 base image: $base"

cat >"$work/user-data" <<'UD'
#!/bin/sh
# Customize: a web server (busybox httpd, from Debian), enabled at every boot, and a page.
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends busybox
mkdir -p /var/www /etc/kiln/rc.d
echo "<h1>baked by kiln on $(hostname)</h1>" > /var/www/index.html
cat > /etc/kiln/rc.d/50-web <<'RC'
#!/bin/sh
busybox httpd -p 80 -h /var/www
RC
chmod +x /etc/kiln/rc.d/50-web
/etc/kiln/rc.d/50-web
UD

step "launch the base image in us-east-1a and customize it (apt-get install inside the instance)"
t0=$(now)
i1=$(ec2 run-instances --image-id "$base" --instance-type t3.small --count 1 \
	--placement AvailabilityZone=us-east-1a --user-data "file://$work/user-data" \
	--tag-specifications 'ResourceType=instance,Tags=[{Key=Name,Value=builder}]' \
	--query 'Instances[0].InstanceId' --output text)
wait_state default us-east-1 instance "$i1" running
ip1=$(ip_of default us-east-1 "$i1")
echo "$i1 runs at $ip1; waiting for the customization"
wait_page "$ip1" "$i1"
t_custom=$(since "$t0")
record "launch + customize from the base image (to page)" "$t_custom"
echo "page: $(cat "$work/page")"

step "stop it and create the image"
t0=$(now)
ec2 stop-instances --instance-ids "$i1" >/dev/null
wait_state default us-east-1 instance "$i1" stopped
record "stop the instance" "$(since "$t0")"
t0=$(now)
ami=$(ec2 create-image --instance-id "$i1" --name web-server-v1 --description "debian-12 with a web server" \
	--query ImageId --output text)
wait_state default us-east-1 image "$ami" available
record "create-image to available" "$(since "$t0")"
echo "image: $ami"

step "launch the image in us-east-1b: the customization is there"
t0=$(now)
i2=$(ec2 run-instances --image-id "$ami" --instance-type t3.small --count 1 \
	--placement AvailabilityZone=us-east-1b --query 'Instances[0].InstanceId' --output text)
wait_state default us-east-1 instance "$i2" running
record "run-instances from the image to running (us-east-1b)" "$(since "$t0")"
ip2=$(ip_of default us-east-1 "$i2")
wait_page "$ip2" "$i2"
t_baked=$(since "$t0")
record "launch from the image (to page)" "$t_baked"
echo "http://$ip2/ says: $(cat "$work/page")"

step "copy the image to eu-west-1 and launch it there"
t0=$(now)
ami_eu=$(aws_as default eu-west-1 ec2 copy-image --source-region us-east-1 --source-image-id "$ami" \
	--name web-server-v1 --query ImageId --output text)
wait_state default eu-west-1 image "$ami_eu" available
record "copy-image to eu-west-1 (to available)" "$(since "$t0")"
t0=$(now)
i3=$(aws_as default eu-west-1 ec2 run-instances --image-id "$ami_eu" --instance-type t3.small --count 1 \
	--placement AvailabilityZone=eu-west-1a --query 'Instances[0].InstanceId' --output text)
wait_state default eu-west-1 instance "$i3" running
ip3=$(ip_of default eu-west-1 "$i3")
wait_page "$ip3" "$i3"
record "launch in eu-west-1 (to page)" "$(since "$t0")"
echo "http://$ip3/ (eu-west-1) says: $(cat "$work/page")"

step "share the image with account 222233334444, which launches it"
ec2 modify-image-attribute --image-id "$ami" --launch-permission 'Add=[{UserId=222233334444}]'
t0=$(now)
i4=$(aws_as friend us-east-1 ec2 run-instances --image-id "$ami" --instance-type t3.small --count 1 \
	--placement AvailabilityZone=us-east-1c --query 'Instances[0].InstanceId' --output text)
wait_state friend us-east-1 instance "$i4" running
ip4=$(ip_of friend us-east-1 "$i4")
wait_page "$ip4" "$i4"
record "the other account's launch (to page)" "$(since "$t0")"
echo "http://$ip4/ (account 222233334444) says: $(cat "$work/page")"

print_timings
printf '\nthe image saves %.1f s per machine: %.1f s from the base image, %.1f s from the baked one\n' \
	"$(echo "$t_custom - $t_baked" | bc -l)" "$t_custom" "$t_baked"

step "clean up"
ec2 terminate-instances --instance-ids "$i1" "$i2" >/dev/null
aws_as default eu-west-1 ec2 terminate-instances --instance-ids "$i3" >/dev/null
aws_as friend us-east-1 ec2 terminate-instances --instance-ids "$i4" >/dev/null
ec2 wait instance-terminated --instance-ids "$i1" "$i2"
ec2 deregister-image --image-id "$ami"
aws_as default eu-west-1 ec2 deregister-image --image-id "$ami_eu"
echo "done"
