#!/usr/bin/env bash
# The machine-image workflow across two deployments: us-east-1 and eu-west-1 each served by its
# own `kiln serve --region` with its own data directory, on two "hosts" (network namespaces
# joined by a veth pair, 10.250.0.0/30), sharing a regions file. us-east-1's block store is in
# object storage: a one-node Ceph (scripts/ceph-up.sh, its RADOS Gateway speaking S3) on host A;
# eu-west-1's is a directory. With the aws CLI (v2): launch busybox in us-east-1 with user data
# that writes a page and starts a web server at every boot, bake an image (stored in Ceph),
# launch it in us-east-1b (restored from Ceph through the host's chunk cache), copy it to
# eu-west-1 (asked of eu-west-1's deployment, which pulls the chunks from us-east-1's), launch it
# there and fetch the page; print the timings and what us-east-1 asked of Ceph; clean up.
# Needs root and Ceph's Debian packages (installed by ceph-up.sh when missing): refuses in one
# line when Ceph cannot start. `make demo-regions` builds what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=demo-regions KILN=${KILN:-$PWD/build/kiln} AWS_BIN=/usr/bin/aws
. scripts/demo-lib.sh
demo_need busybox.tar

work=$(mktemp -d /var/tmp/kiln-demo-regions.XXXXXX)
net=${KILN_DEMO_NET:-10.250.0}
nsa=kdemo-use1 nsb=kdemo-euw1
addr_a=$net.1 addr_b=$net.2 port=8773 s3_port=7480
pids=()
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	nsenter --net=/run/netns/$nsa "$KILN" down --data "$work/use1" >/dev/null 2>&1
	nsenter --net=/run/netns/$nsb "$KILN" down --data "$work/euw1" >/dev/null 2>&1
	scripts/ceph-down.sh "$work/ceph" >/dev/null 2>&1
	ip netns del $nsa 2>/dev/null
	ip netns del $nsb 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
if ip netns list | grep -qw "$nsa\|$nsb"; then
	echo "demo-regions: network namespace $nsa or $nsb exists (another demo running?)" >&2
	exit 1
fi

in_ns() { local ns=$1; shift; nsenter --net=/run/netns/"$ns" "$@"; }
export AWS_SHARED_CREDENTIALS_FILE=$work/credentials AWS_CONFIG_FILE=/dev/null AWS_PAGER=""
# The aws CLI against a region's own deployment, from inside that "host".
use1() { in_ns $nsa "$AWS_BIN" --region us-east-1 --endpoint-url "http://$addr_a:$port" ec2 "$@"; }
euw1() { in_ns $nsb "$AWS_BIN" --region eu-west-1 --endpoint-url "http://$addr_b:$port" ec2 "$@"; }
# Wait for the page of an instance, fetched from inside its host.
wait_page() {
	local ns=$1 ip=$2 t=0
	until in_ns "$ns" curl -s --max-time 1 "http://$ip/" >"$work/page" 2>/dev/null && grep -q kiln "$work/page"; do
		t=$((t + 1))
		[ $t -lt 240 ] || { echo "demo-regions: no page at http://$ip/ after 2 minutes" >&2; return 1; }
		sleep 0.5
	done
}
# Launch image in zone with the CLI function cli, wait for its page from inside its host (ns),
# record the time as what; the instance id in $launched.
launch_to_page() {
	local cli=$1 ns=$2 image=$3 zone=$4 what=$5 t0 ip
	t0=$(now)
	launched=$($cli run-instances --image-id "$image" --instance-type t3.micro --count 1 \
		--placement AvailabilityZone="$zone" --query 'Instances[0].InstanceId' --output text)
	$cli wait instance-running --instance-ids "$launched"
	ip=$($cli describe-instances --instance-ids "$launched" --query 'Reservations[0].Instances[0].PublicIpAddress' --output text)
	wait_page "$ns" "$ip"
	record "$what" "$(since "$t0")"
	echo "http://$ip/ ($zone) says: $(cat "$work/page")"
}

step "two hosts: network namespaces $nsa ($addr_a) and $nsb ($addr_b), joined by a veth pair"
ip netns add $nsa
ip netns add $nsb
ip link add ve-$nsa netns $nsa type veth peer name ve-$nsb netns $nsb
in_ns $nsa ip addr add $addr_a/30 dev ve-$nsa
in_ns $nsb ip addr add $addr_b/30 dev ve-$nsb
for ns in $nsa $nsb; do in_ns $ns ip link set lo up; in_ns $ns ip link set ve-$ns up; done

step "object storage for us-east-1's store: a one-node Ceph on host A (radosgw on 127.0.0.1:$s3_port)"
t0=$(now)
if ! in_ns $nsa scripts/ceph-up.sh "$work/ceph" $s3_port 2>"$work/ceph-up.log"; then
	echo "demo-regions: Ceph cannot start here: $(tail -1 "$work/ceph-up.log")" >&2
	exit 1
fi
record "Ceph up (mon, OSD on a file, radosgw)" "$(since "$t0")"
# Its S3 keys go to us-east-1's kiln only (the aws CLI keeps kiln's own keys).
mapfile -t s3_env <"$work/ceph/env"
store_url="s3://kiln-demo/use1?endpoint=http://127.0.0.1:$s3_port"
echo "us-east-1's store: $store_url (keys from the environment, never in the URL)"

step "a data directory per region, one regions file, one account on both"
cat >"$work/regions" <<EOF
region us-east-1 http://$addr_a:$port
region eu-west-1 http://$addr_b:$port
internal-key $(od -An -tx1 -N32 /dev/urandom | tr -d " \n")
EOF
chmod 600 "$work/regions"
printf 'us-east-1 a b\nstore us-east-1 %s\n' "$store_url" >"$work/use1.topology"
echo "eu-west-1 a b" >"$work/euw1.topology"
in_ns $nsa env "${s3_env[@]}" "$KILN" init --data "$work/use1" --topology "$work/use1.topology" >/dev/null
"$KILN" init --data "$work/euw1" --topology "$work/euw1.topology" >/dev/null
cat "$work/regions" | sed 's/internal-key .*/internal-key …/'
# The same user on both deployments: an account with the same id and keys.
key=$(awk '/aws_access_key_id/ {print $3}' "$work/use1/credentials")
secret=$(awk '/aws_secret_access_key/ {print $3}' "$work/use1/credentials")
cp "$work/use1/credentials" "$work/credentials"
# nsenter execs the daemon (it forks only for a PID namespace): $! is the daemon itself.
nsenter --net=/run/netns/$nsa env "${s3_env[@]}" KILN_LOG_LEVEL=info "$KILN" serve \
	--data "$work/use1" --listen "$addr_a:$port" --region us-east-1 --regions "$work/regions" \
	>"$work/use1.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do in_ns $nsa curl -s "http://$addr_a:$port" >/dev/null 2>&1 && break; sleep 0.1; done
account=$(in_ns $nsa "$AWS_BIN" --region us-east-1 --endpoint-url "http://$addr_a:$port" sts \
	get-caller-identity --query Account --output text)
"$KILN" account create me --account-id "$account" --access-key "$key" --secret-key "$secret" \
	--data "$work/euw1" >/dev/null
nsenter --net=/run/netns/$nsb "$KILN" serve --data "$work/euw1" --listen "$addr_b:$port" \
	--region eu-west-1 --regions "$work/regions" >"$work/euw1.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do in_ns $nsb curl -s "http://$addr_b:$port" >/dev/null 2>&1 && break; sleep 0.1; done
echo "account $account on both deployments"
echo "DescribeRegions on eu-west-1's deployment:"
euw1 describe-regions --query 'Regions[].[RegionName,Endpoint]' --output text
for r in use1 euw1; do
	$r authorize-security-group-ingress --group-name default --protocol tcp --port 80 --cidr 0.0.0.0/0 >/dev/null
done
base=$(use1 describe-images --owners amazon --filters Name=name,Values=kiln-busybox --query 'Images[0].ImageId' --output text)
cat >"$work/user-data" <<'UD'
#!/bin/sh
# A page and a web server started at every boot (busybox httpd).
mkdir -p /var/www /etc/kiln/rc.d
echo "<h1>baked by kiln in us-east-1 on $(hostname)</h1>" > /var/www/index.html
printf '#!/bin/sh\nhttpd -p 80 -h /var/www\n' > /etc/kiln/rc.d/50-web
chmod +x /etc/kiln/rc.d/50-web
/etc/kiln/rc.d/50-web
UD

step "launch busybox in us-east-1a and customize it"
t0=$(now)
i1=$(use1 run-instances --image-id "$base" --instance-type t3.micro --count 1 \
	--placement AvailabilityZone=us-east-1a --user-data "file://$work/user-data" \
	--query 'Instances[0].InstanceId' --output text)
use1 wait instance-running --instance-ids "$i1"
ip1=$(use1 describe-instances --instance-ids "$i1" --query 'Reservations[0].Instances[0].PublicIpAddress' --output text)
wait_page $nsa "$ip1"
record "launch + customize in us-east-1 (to page)" "$(since "$t0")"
echo "http://$ip1/ says: $(cat "$work/page")"

step "stop it and create the image in us-east-1"
use1 stop-instances --instance-ids "$i1" >/dev/null
use1 wait instance-stopped --instance-ids "$i1"
t0=$(now)
ami=$(use1 create-image --instance-id "$i1" --name web-v1 --query ImageId --output text)
use1 wait image-available --image-ids "$ami"
record "create-image to available (us-east-1)" "$(since "$t0")"
echo "image: $ami"

step "launch it in us-east-1b: restored from Ceph (through the host's chunk cache)"
launch_to_page use1 $nsa "$ami" us-east-1b "launch from the image in us-east-1b (to page)"
i3=$launched

step "copy it to eu-west-1: asked of eu-west-1's deployment, which pulls the chunks from us-east-1's"
t0=$(now)
ami_eu=$(euw1 copy-image --source-region us-east-1 --source-image-id "$ami" --name web-v1 \
	--query ImageId --output text)
euw1 wait image-available --image-ids "$ami_eu"
record "copy-image between deployments (to available)" "$(since "$t0")"
echo "image in eu-west-1: $ami_eu"

step "launch it in eu-west-1b: the page is there"
launch_to_page euw1 $nsb "$ami_eu" eu-west-1b "launch in eu-west-1 (to page)"
i2=$launched

print_timings

step "what us-east-1's deployment asked of Ceph (its log's 'store io' lines)"
grep -o 'store io (.*' "$work/use1.log" | sed 's/; since start.*//' | tail -8

step "clean up"
use1 terminate-instances --instance-ids "$i1" "$i3" >/dev/null
euw1 terminate-instances --instance-ids "$i2" >/dev/null
use1 wait instance-terminated --instance-ids "$i1" "$i3"
euw1 wait instance-terminated --instance-ids "$i2"
echo "done"
