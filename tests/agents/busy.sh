#!/usr/bin/env bash
# Works for a while without running any co or wo command, printing as it goes (as an agent
# thinking and editing does), then does the work and hands it in. `busy.sh SECONDS`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
id=$(assigned_id)
end=$((SECONDS + ${1:-8}))
n=0
while [ "$SECONDS" -lt "$end" ]; do n=$((n + 1)); echo "working… step $n"; sleep 0.5; done
do_work "$id"
co worker done
exec sleep 3600
