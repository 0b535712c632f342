#!/usr/bin/env bash
# Dies at once, each time with different output (so it is restarted with backoff, not taken
# for a start-up error that repeats; see crash-same.sh for that).
echo "crashing (${VERMAS_INCARNATION:-?} at $(date +%s.%N))"
exit 1
