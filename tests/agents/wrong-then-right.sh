#!/usr/bin/env bash
# Gets it wrong the first time (answer.txt = wrong), right after a rework.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
id=$(assigned_id)
if [ -z "$id" ]; then exec sleep 3600; fi
attempt=$(assigned_attempt)
file="answer-$id.txt"
if [ "${attempt:-1}" -le 1 ]; then echo wrong > "$file"; else echo right > "$file"; fi
git add "$file"
git commit -qm "Answer for $id (attempt ${attempt:-1})"
co worker done
exec sleep 3600
