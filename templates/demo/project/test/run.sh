#!/usr/bin/env bash
# The textkit test suite: every function in lib/ is checked; a missing file is "pending".
set -u
cd "$(dirname "$0")/.."
pass=0 fail=0 pending=0
check() {
  if [ "$2" = "$3" ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $1: expected '$2', got '$3'"
  fi
}
have() {
  if [ -f "lib/$1.sh" ]; then
    # shellcheck disable=SC1090
    . "lib/$1.sh"
  else
    pending=$((pending + 1))
    echo "pending: lib/$1.sh"
    return 1
  fi
}
. lib/shout.sh
check "shout hello" "HELLO" "$(shout hello)"
if have reverse; then
  check "reverse abc" "cba" "$(reverse abc)"
  check "reverse empty" "" "$(reverse '')"
fi
if have words; then
  check "count_words 'one two  three'" "3" "$(count_words 'one two  three')"
  check "count_words ''" "0" "$(count_words '')"
  check "count_words '*'" "1" "$(count_words '*')"
fi
if have palindrome; then
  check "is_palindrome racecar" "yes" "$(is_palindrome racecar)"
  check "is_palindrome Racecar" "yes" "$(is_palindrome Racecar)"
  check "is_palindrome abc" "no" "$(is_palindrome abc)"
fi
echo "$pass passed, $fail failed, $pending pending"
[ "$fail" -eq 0 ]
