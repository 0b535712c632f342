#!/usr/bin/env bash
# Starts children that leave its session and process group (setsid, nohup, a double fork), as
# some agent CLIs start daemons, then hangs (`daemons.sh hang`) or does its work and hands it
# in (`daemons.sh done`).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
id=$(assigned_id)
setsid sleep 100000 </dev/null >/dev/null 2>&1 &
nohup sleep 100000 </dev/null >/dev/null 2>&1 &
( ( sleep 100000 </dev/null >/dev/null 2>&1 & ) & )
echo "daemons started"
if [ "${1:-hang}" = done ] && [ -n "$id" ]; then
  do_work "$id"
  co worker done
fi
exec sleep 100000
