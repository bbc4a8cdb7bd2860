# What the demos (scripts/demo.sh, scripts/demo-regions.sh) share; sourced, not run. The caller
# has cd'ed to the repository and set DEMO (its name, for messages), KILN and AWS_BIN.

# Refuse in one line unless we are root and the kiln binary, Debian's aws CLI and the public
# image build/images/$1 are there ($2: how to make the image, when 'make images' is not all).
demo_need() {
	local image=$1 hint=${2:-"'make images'"}
	[ "$(id -u)" = 0 ] || { echo "$DEMO: run as root (instances are real)" >&2; exit 1; }
	[ -x "$KILN" ] || { echo "$DEMO: $KILN is missing; run 'make build'" >&2; exit 1; }
	[ -x "$AWS_BIN" ] || { echo "$DEMO: $AWS_BIN (Debian's awscli) is missing" >&2; exit 1; }
	[ -f "build/images/$image" ] || { echo "$DEMO: build/images/$image is missing ($hint)" >&2; exit 1; }
}

step() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
since() { printf '%.1f' "$(echo "$(now) - $1" | bc -l)"; }
declare -a timings=()
record() { timings+=("$(printf '%-52s %8s s' "$1" "$2")"); }
print_timings() { step "timings"; printf '%s\n' "${timings[@]}"; }
