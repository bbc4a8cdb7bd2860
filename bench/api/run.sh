#!/usr/bin/env bash
# kiln API benchmark against moto's server: see bench/api/README.md. Run as root:
#   bench/api/run.sh
# Environment: RUNS=3, SECONDS_PER_RUN=5, N_IMAGES=1000, N_INSTANCES=1000,
#   BENCH_DIR=/var/tmp/kiln-bench-api, NO_REPORT=1 (print instead of writing bench/RESULTS.md),
#   PY=the Python with boto3 and moto (default: the first of pyenv's python3 and python3 on PATH
#   that imports moto.server).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
make -C "$ROOT" build >/dev/null
if [ -z "${PY:-}" ]; then
	for p in "$(command -v pyenv >/dev/null && pyenv which python3 2>/dev/null || true)" \
		/root/.pyenv/shims/python3 "$(command -v python3)"; do
		if [ -n "$p" ] && "$p" -c "import moto.server, boto3" 2>/dev/null; then PY=$p; break; fi
	done
fi
[ -n "${PY:-}" ] || { echo "bench/api: no Python with moto[server] and boto3 (pip install 'moto[server]')" >&2; exit 1; }
exec "$PY" "$HERE/bench.py"
