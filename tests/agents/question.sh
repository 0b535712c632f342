#!/usr/bin/env bash
# Asks a yes/no question and waits for an answer typed into its session.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
id=$(assigned_id)
if [ -z "$id" ]; then exec sleep 3600; fi
read -r -p "Proceed with $id? [y/n] " answer
case "$answer" in
  y|Y|yes) do_work "$id"; co worker done ;;
  *) echo "not proceeding ($answer)" ;;
esac
exec sleep 3600
