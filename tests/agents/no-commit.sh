#!/usr/bin/env bash
# Edits but never commits; `co worker done` refuses it.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
id=$(assigned_id)
echo "edited without committing" > "uncommitted-${id:-x}.txt"
co worker done || echo "done was refused"
exec sleep 100000
