#!/usr/bin/env bash
# Runs the agent a work order asks for with its label agent:NAME (good, wrong-then-right, hang,
# crash, question, no-commit); good.sh when there is none. Lets one factory run a mix.
set -uo pipefail
here=$(dirname "$0")
name=$(wo show "${WORK_ORDER_ID:-none}" --json 2>/dev/null | sed -n 's/.*"agent:\([a-z-]*\)".*/\1/p' | head -1)
exec bash "$here/${name:-good}.sh" "$@"
