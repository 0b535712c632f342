#!/usr/bin/env bash
# The scripted worker of `co demo`: no API key, no network. It follows the worker protocol
# (co assignment, wo show, commit, co worker done) and writes the missing piece its work order
# names (label piece:NAME). The palindrome is case-sensitive on the first attempt, so the gates
# send it back once.
set -euo pipefail
say() { printf '[demo agent] %s\n' "$*"; }
out=$(co assignment)
printf '%s\n' "$out"
case "$out" in
  ASSIGNED:*) ;;
  *) say "nothing assigned; waiting"; exec sleep 3600 ;;
esac
id=$(printf '%s\n' "$out" | awk 'NR==1 {print $2}')
attempt=$(printf '%s\n' "$out" | sed -n 's/.*attempt \([0-9][0-9]*\)).*/\1/p' | head -1)
piece=$(wo show "$id" --json | sed -n 's/.*"piece:\([a-z]*\)".*/\1/p' | head -1)
say "working on $id: piece '$piece', attempt ${attempt:-1}"
# A real agent would think here; pause so people watching can follow along.
sleep "${VERMAS_DEMO_PACE:-2}"
case "$piece" in
  reverse)
    cat > lib/reverse.sh <<'CODE'
# reverse TEXT: prints TEXT backwards.
reverse() {
  local s=$1 out='' i
  for ((i = ${#s} - 1; i >= 0; i--)); do out+=${s:i:1}; done
  printf '%s\n' "$out"
}
CODE
    ;;
  words)
    cat > lib/words.sh <<'CODE'
# count_words TEXT: prints how many blank-separated words TEXT has.
count_words() {
  local -a w
  read -r -a w <<< "$1"
  printf '%s\n' "${#w[@]}"
}
CODE
    ;;
  palindrome)
    if [ "${attempt:-1}" -le 1 ]; then
      say "(getting it subtly wrong: case-sensitive)"
      cat > lib/palindrome.sh <<'CODE'
# is_palindrome TEXT: prints yes if TEXT reads the same backwards, else no.
is_palindrome() {
  local s=$1 r='' i
  for ((i = ${#s} - 1; i >= 0; i--)); do r+=${s:i:1}; done
  if [ "$s" = "$r" ]; then echo yes; else echo no; fi
}
CODE
    else
      say "reading the failure QA attached, then fixing it: ignore case"
      cat > lib/palindrome.sh <<'CODE'
# is_palindrome TEXT: prints yes if TEXT reads the same backwards, ignoring case, else no.
is_palindrome() {
  local s=${1,,} r='' i
  for ((i = ${#s} - 1; i >= 0; i--)); do r+=${s:i:1}; done
  if [ "$s" = "$r" ]; then echo yes; else echo no; fi
}
CODE
    fi
    ;;
  *) say "unknown piece '$piece'"; exit 1 ;;
esac
bash test/run.sh || true
sleep 1
git add lib
git commit -qm "$id: implement $piece (attempt ${attempt:-1})"
say "committed; handing it in"
co worker done
exec sleep 3600
