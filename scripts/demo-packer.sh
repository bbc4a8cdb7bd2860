#!/usr/bin/env bash
# Packer against kiln: Debian's packer builds examples/packer/debian-hello.pkr.hcl with its
# amazon-ebs builder (kiln-debian-12 + Debian's `hello` package + a stamp file), copies the image to
# eu-west-1 and shares it with a second account; the demo prints the image ids, then the second
# account launches the eu-west-1 copy and runs `hello` in it. The instance has no mirror: the .deb
# comes from the host's apt (`apt-get download hello`) and Packer uploads it.
# Needs root (instances are real). `make demo-packer` builds and installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-$PWD/build/kiln}
[ "$(id -u)" = 0 ] || { echo "demo-packer: run as root (instances are real)" >&2; exit 1; }
[ -x "$KILN" ] || { echo "demo-packer: $KILN is missing; run 'make build'" >&2; exit 1; }
command -v packer >/dev/null || { echo "demo-packer: packer is missing (apt-get install packer)" >&2; exit 1; }
[ -f build/images/debian-12.tar ] || { echo "demo-packer: build/images/debian-12.tar is missing ('make images' needs Debian's mirror)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/kiln-demo-packer.XXXXXX)
data=$work/data
port=${KILN_DEMO_PORT:-8780}
url=http://127.0.0.1:$port
serve_pid=
cleanup() {
	local rc=$?
	set +e
	if [ $rc != 0 ] && [ -f "$work/packer.log" ]; then
		echo "demo-packer: failed; the end of packer's log and of the daemon's:" >&2
		tail -20 "$work/packer.log" >&2
		tail -20 "$work/serve.log" >&2
	fi
	if [ -n "$serve_pid" ]; then
		kill "$serve_pid" 2>/dev/null
		wait "$serve_pid" 2>/dev/null
	fi
	"$KILN" down --data "$data" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "a data directory, a second account (222233334444), the daemon, Debian's hello .deb"
"$KILN" init --data "$data" >/dev/null
"$KILN" account create friend --account-id 222233334444 --data "$data" >"$work/friend"
"$KILN" serve --data "$data" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do curl -s "$url" >/dev/null 2>&1 && break; sleep 0.1; done
(cd "$work" && apt-get download hello >/dev/null)
deb=$(ls "$work"/hello_*.deb)
echo "$deb"

step "packer build (log: $work/packer.log while it runs)"
key() { awk -F' *= *' -v k="$1" '$1 == k { print $2; exit }' "$2"; }
t0=$(date +%s)
AWS_ACCESS_KEY_ID=$(key aws_access_key_id "$data/credentials") \
AWS_SECRET_ACCESS_KEY=$(key aws_secret_access_key "$data/credentials") \
PACKER_LOG=1 PACKER_LOG_PATH=$work/packer.log PACKER_CACHE_DIR=$work/cache CHECKPOINT_DISABLE=1 \
	packer build -color=false -var "endpoint=$url" -var "deb=$deb" -var share_with=222233334444 \
	examples/packer/debian-hello.pkr.hcl | tee "$work/build.out"
echo "packer build took $(($(date +%s) - t0)) s"

step "the images"
grep -E '^(us-east-1|eu-west-1): ami-' "$work/build.out"
ami_eu=$(awk '$1 == "eu-west-1:" { print $2 }' "$work/build.out")

step "account 222233334444 launches $ami_eu in eu-west-1 and runs hello in it"
AWS_ACCESS_KEY_ID=$(key aws_access_key_id "$work/friend")
AWS_SECRET_ACCESS_KEY=$(key aws_secret_access_key "$work/friend")
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION=eu-west-1 KILN_ENDPOINT=$url KILN_DATA=$data AWS_PAGER=""
unset AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE AWS_PROFILE
iid=$(/usr/bin/aws --endpoint-url "$url" ec2 run-instances --image-id "$ami_eu" --instance-type t3.micro \
	--query 'Instances[0].InstanceId' --output text)
/usr/bin/aws --endpoint-url "$url" ec2 wait instance-running --instance-ids "$iid"
found=
for _ in $(seq 60); do
	"$KILN" exec "$iid" -- sh -c 'dpkg -s hello | grep ^Status && hello && cat /etc/kiln-packer-stamp' &&
		found=1 && break
	sleep 1
done
[ -n "$found" ] || { echo "demo-packer: hello is not in $iid" >&2; exit 1; }
/usr/bin/aws --endpoint-url "$url" ec2 terminate-instances --instance-ids "$iid" >/dev/null
echo "done"
