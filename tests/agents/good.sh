#!/usr/bin/env bash
# A good worker: does its assignment at once and hands it in.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
id=$(assigned_id)
if [ -z "$id" ]; then echo "nothing assigned; waiting"; exec sleep 3600; fi
do_work "$id"
co worker done
exec sleep 3600
