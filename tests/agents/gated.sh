#!/usr/bin/env bash
# A good worker held at the gate: does its assignment at once, then waits until
# $COMPANY_ROOT/go exists before handing it in, so many workers hand in together.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
id=$(assigned_id)
if [ -z "$id" ]; then echo "nothing assigned; waiting"; exec sleep 3600; fi
do_work "$id"
: > "$COMPANY_ROOT/ready-$id"
while [ ! -e "$COMPANY_ROOT/go" ]; do sleep 0.02; done
co worker done
exec sleep 3600
