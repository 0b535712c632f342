#!/usr/bin/env bash
# Dies at once with the same error every time, as an agent CLI refusing to start does.
echo "Error: --dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"
exit 1
