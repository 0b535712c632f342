#!/usr/bin/env bash
# Dies at once.
echo "crashing"
exit 1
