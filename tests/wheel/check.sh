#!/usr/bin/env bash
# Builds the Python wheel (pyproject.toml: maturin, `co` and `wo` in one wheel), installs it
# into a fresh virtual environment and runs both commands from there, as `pip install vermas`
# would leave them. maturin is pinned and cached in ~/.cache/vermas/maturin-<version>.
#
# usage: tests/wheel/check.sh [--release]     (default: the dev profile, quicker to build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

version=1.9.4
cache=${HOME:?HOME is not set}/.cache/vermas/maturin-$version

# A virtual environment at $1 and how to run pip in it: Debian's python3 without python3-venv
# has no ensurepip, so then the venv is made without pip and the system's pip installs into it
# (`pip --python`, pip 22.3 or newer).
venv() {
  if python3 -m venv "$1" >/dev/null 2>&1; then
    pip=("$1/bin/pip")
  else
    rm -rf "$1"
    python3 -m venv --without-pip "$1"
    python3 -m pip --version >/dev/null 2>&1 || {
      echo "error: no pip for python3 (apt-get install python3-venv or python3-pip)" >&2
      exit 1
    }
    pip=(python3 -m pip --python "$1/bin/python")
  fi
}

if [ ! -x "$cache/bin/maturin" ]; then
  rm -rf "$cache"
  venv "$cache"
  "${pip[@]}" install --quiet --disable-pip-version-check "maturin==$version"
fi

profile=(--profile dev)
[ "${1:-}" = --release ] && profile=(--release)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$cache/bin/maturin" build "${profile[@]}" --quiet --out "$out/wheels" >&2
wheel=$(ls "$out"/wheels/vermas-*.whl)
echo "built $(basename "$wheel")"

venv "$out/venv"
"${pip[@]}" install --quiet --disable-pip-version-check --no-index "$wheel"
for cmd in co wo; do
  path="$out/venv/bin/$cmd"
  [ -x "$path" ] || { echo "error: the wheel did not install $cmd" >&2; exit 1; }
  "$path" --version
  "$path" --help >/dev/null
done
# The installed pair works together: a store made by one is read by the other.
company="$out/company"
"$out/venv/bin/co" init "$company" >/dev/null 2>&1
(cd "$company" && "$out/venv/bin/wo" create --title "from the wheel" >/dev/null &&
  "$out/venv/bin/wo" list --json | grep -q "from the wheel")
echo "the wheel installs co and wo, and they run"
