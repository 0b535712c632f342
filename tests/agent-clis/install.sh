#!/usr/bin/env bash
# Installs the agent CLIs of versions.txt, each at its pinned version, into a cache:
#   ${VERMAS_AGENT_CLIS_DIR:-$HOME/.cache/vermas/agent-clis}/<cli>-<version>/
# and prints on stdout one directory holding a link per installed CLI (claude, codex, gemini,
# opencode, aider). Idempotent: a CLI whose cache directory is complete is not touched again.
# A CLI that cannot be installed (registry unreachable, …) is reported on stderr as
#   SKIPPED: <cli>: <why>
# and the others go on; the exit status is 0 unless nothing at all could be installed.
#
# usage: install.sh [cli ...]        (default: every CLI of versions.txt)
# env:   VERMAS_AGENT_CLIS_DIR       cache root
#        VERMAS_AGENT_CLIS_TIMEOUT   seconds allowed per CLI install (default 600)
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${VERMAS_AGENT_CLIS_DIR:-${HOME:?HOME is not set}/.cache/vermas/agent-clis}
limit=${VERMAS_AGENT_CLIS_TIMEOUT:-600}
mkdir -p "$root/bin" || { echo "install.sh: cannot create $root" >&2; exit 1; }

# One installer at a time per cache (tests may run it in parallel).
exec 9>"$root/.lock"
flock 9

want=" $* "
# The CLIs to install: "cli kind package version" lines.
mapfile -t entries < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/versions.txt" |
  awk -v want="$want" 'want == "  " || index(want, " " $1 " ") { print $1, $2, $3, $4 }')

# Where each CLI's program lands inside its cache directory.
program_path() { # cli kind dir
  case $2 in
    npm) echo "$3/node_modules/.bin/$1" ;;
    pip) echo "$3/venv/bin/$1" ;;
  esac
}

# Installs one CLI into $dir; only a finished install gets the `.complete` marker, so a
# half-done one (interrupted, failed) is removed and made again on the next run.
install_one() { # cli kind package version dir
  local cli=$1 kind=$2 pkg=$3 ver=$4 dir=$5
  rm -rf "$dir"
  mkdir -p "$dir"
  case $kind in
    npm)
      # --prefix: a private node_modules; scripts stay on (some CLIs fetch their platform
      # binary as an optional dependency and check it in postinstall); no audit, fund or
      # update-notifier traffic.
      # Few retries: an unreachable registry should be reported in seconds, not minutes.
      timeout "$limit" npm install --prefix "$dir" --no-audit --no-fund --no-update-notifier \
        --fetch-retries=1 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=5000 \
        --loglevel=error "$pkg@$ver" || return 1
      ;;
    pip)
      local pip
      if python3 -m venv "$dir/venv"; then
        pip=("$dir/venv/bin/pip")
      else
        # Debian's python3 without python3-venv has no ensurepip: make the venv without pip
        # and install into it with the system's pip (`pip --python`, pip >= 22.3).
        echo "install.sh: python3 -m venv failed; trying --without-pip and the system pip"
        rm -rf "$dir/venv"
        python3 -m venv --without-pip "$dir/venv" || return 1
        python3 -m pip --version >/dev/null 2>&1 ||
          { echo "no pip for python3 (apt-get install python3-venv or python3-pip)"; return 1; }
        pip=(python3 -m pip --python "$dir/venv/bin/python")
      fi
      PIP_DISABLE_PIP_VERSION_CHECK=1 timeout "$limit" "${pip[@]}" install --quiet \
        --no-input --retries 1 --timeout 20 "$pkg==$ver" || return 1
      ;;
  esac
  [ -x "$(program_path "$cli" "$kind" "$dir")" ] || { echo "no $cli program after install"; return 1; }
  touch "$dir/.complete"
}

started=$(date +%s)
declare -A pids=()
declare -A dirs=()
for e in "${entries[@]}"; do
  read -r cli kind pkg ver <<<"$e"
  dir="$root/$cli-$ver"
  dirs[$cli]=$dir
  [ -f "$dir/.complete" ] && continue
  case $kind in
    npm) command -v npm >/dev/null || { echo "SKIPPED: $cli: npm is not installed" >&2; continue; } ;;
    pip) command -v python3 >/dev/null || { echo "SKIPPED: $cli: python3 is not installed" >&2; continue; } ;;
  esac
  echo "install.sh: installing $pkg@$ver into $dir" >&2
  (install_one "$cli" "$kind" "$pkg" "$ver" "$dir") >"$dir.log" 2>&1 &
  pids[$cli]=$!
done

for cli in "${!pids[@]}"; do
  if ! wait "${pids[$cli]}"; then
    log="${dirs[$cli]}.log"
    # The line that names the cause when there is one, else the last lines.
    why=$(grep -m1 -E 'ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|E404|ETARGET|Connection refused|Name or service not known|Temporary failure|No matching distribution|Could not find a version|timed out' "$log" |
      cut -c1-300)
    [ -n "$why" ] || why=$(grep -v '^[[:space:]]*$' "$log" | tail -3 | tr '\n' ' ' | cut -c1-300)
    echo "SKIPPED: $cli: install failed: ${why:-no output} (full log: $log)" >&2
  fi
done

installed=0
for e in "${entries[@]}"; do
  read -r cli kind pkg ver <<<"$e"
  dir=${dirs[$cli]}
  link="$root/bin/$cli"
  if [ -f "$dir/.complete" ]; then
    ln -sfn "$(program_path "$cli" "$kind" "$dir")" "$link"
    installed=$((installed + 1))
  else
    rm -f "$link"
  fi
done
[ ${#pids[@]} -gt 0 ] && echo "install.sh: done in $(($(date +%s) - started)) s" >&2
[ "$installed" -gt 0 ] || { echo "install.sh: no agent CLI could be installed" >&2; exit 1; }
echo "$root/bin"
