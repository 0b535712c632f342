#!/usr/bin/env bash
# Checks its assignment, says where it is, then hangs without finishing.
# With the argument `commit` it commits some work first (unmerged work for kill tests).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
id=$(assigned_id)
echo "AGENT_ID=$AGENT_ID CO_ROLE=$CO_ROLE CO_FACTORY=$CO_FACTORY WORK_ORDER_ID=${WORK_ORDER_ID:-}"
echo "PWD=$PWD BRANCH=$(git branch --show-current)"
if [ "${1:-}" = commit ] && [ -n "$id" ]; then do_work "$id"; echo "committed"; fi
echo "hanging"
exec sleep 100000
