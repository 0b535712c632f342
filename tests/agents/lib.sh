# Shared by the scripted agents: read the assignment and do the work of a work order.
# shellcheck shell=bash

# Prints the assigned work order id, or nothing.
assigned_id() {
  local out
  out=$(co assignment)
  printf '%s\n' "$out" >&2
  case "$out" in
    ASSIGNED:*) printf '%s\n' "$out" | awk 'NR==1 {print $2}' ;;
  esac
}

# The attempt number from `co assignment` ("… attempt 2)").
assigned_attempt() {
  co assignment | sed -n 's/.*attempt \([0-9][0-9]*\)).*/\1/p' | head -1
}

# A label value of the work order: label_value <id> file
label_value() {
  wo show "$1" --json | tr ',' '\n' | sed -n "s/.*\"$2:\\([^\"]*\\)\".*/\\1/p" | head -1
}

# Writes the work and commits it.
do_work() {
  local id=$1 file line
  file=$(label_value "$id" file)
  line=$(label_value "$id" line)
  file=${file:-work-$id.txt}
  line=${line:-work for $id}
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$line" > "$file"
  git add -- "$file"
  git commit -qm "Do $id"
}
