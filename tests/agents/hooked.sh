#!/usr/bin/env bash
# Reports its state the way Claude Code's hooks do (`co agent-hook` with the hook's JSON on
# stdin) and prints nothing while it "works": a prompt submitted, then a tool call every half
# second for $HOOKED_BUSY_SECONDS (default 6), then the turn ends (Stop). It writes the time of
# the Stop (epoch seconds) to $COMPANY_ROOT/turn-ended-<id>, then waits at its "prompt".
set -uo pipefail
. "$(dirname "$0")/lib.sh"
id=$(assigned_id)
hook() { printf '{"session_id":"s","hook_event_name":"%s"}' "$1" | "$VERMAS_CO" agent-hook; }
echo "working quietly on $id"
hook UserPromptSubmit
end=$((SECONDS + ${HOOKED_BUSY_SECONDS:-6}))
while [ "$SECONDS" -lt "$end" ]; do
  hook PreToolUse
  sleep 0.5
done
hook Stop
date +%s > "$COMPANY_ROOT/turn-ended-$id"
echo "turn ended"
exec sleep 100000
