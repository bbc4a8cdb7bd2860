#!/usr/bin/env bash
# kiln image lifecycle benchmark (see the top of bench/lifecycle/bench.py). Run as root:
#   bench/lifecycle/run.sh        (RUNS=3, NO_REPORT=1 to print only)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
make -C "$HERE/../.." build images >/dev/null
exec /usr/bin/python3 "$HERE/bench.py"
