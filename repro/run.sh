#!/bin/bash
# usage: run.sh NAME ENDPOINTS_JSON wandown-args...
# A fresh client of the demo sandbox DEMO (Wan2GP copy, empty ckpts, no hub, own cache).
set -u
NAME=$1; EPS=$2; shift 2
DEMO=${DEMO:-/tmp/wandown-demo-j_09_plk}
W=/tmp/h15/$NAME
rm -rf "$W"; mkdir -p "$W"
cp -r "$DEMO/Wan2GP" "$W/"; rm -rf "$W/Wan2GP/ckpts"; mkdir -p "$W/Wan2GP/ckpts"
cat > "$W/config.json" <<J
{"hub_directory": "${HUBDIR:-}", "wan2gp_directory": "Wan2GP/ckpts", "bandwidth_limit_kb": 0, "endpoints": $EPS}
J
cd "$W" && WANDOWN_CACHE_DIR="$W/cache" HF_TOKEN=${TOK-sekret} timeout ${TMO:-120} /work/main/.venv/bin/python /work/wt-h15/wandown.py --no-limit "$@"
echo "rc=$?"
