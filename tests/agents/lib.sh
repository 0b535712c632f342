# Shared by the scripted agents: read the assignment and do the work of a work order.
# shellcheck shell=bash

# Prints the assigned work order id, or nothing.
assigned_id() {
  local out first
  out=$(co assignment)
  printf '%s\n' "$out" >&2
  first=${out%%$'\n'*}
  case "$first" in
    ASSIGNED:*) first=${first#ASSIGNED: }; printf '%s\n' "${first%% *}" ;;
  esac
}

# The attempt number from `co assignment` ("… attempt 2)").
assigned_attempt() {
  co assignment | sed -n 's/.*attempt \([0-9][0-9]*\)).*/\1/p' | head -1
}

# A label value of the work order: label_value <id> file
label_value() {
  label_in "$(wo show "$1" --json)" "$2"
}

# A label value in a work order's JSON: label_in <json> file. In shell, without a process per
# look: an agent's own time is not what the suite and the bench measure.
label_in() {
  local rest
  case "$1" in *"\"$2:"*) ;; *) return 0 ;; esac
  rest=${1#*\"$2:}
  printf '%s\n' "${rest%%\"*}"
}

# Writes the work and commits it.
do_work() {
  local id=$1 json file line
  json=$(wo show "$id" --json)
  file=$(label_in "$json" file)
  line=$(label_in "$json" line)
  file=${file:-work-$id.txt}
  line=${line:-work for $id}
  case "$file" in */*) mkdir -p "${file%/*}" ;; esac
  printf '%s\n' "$line" > "$file"
  git add -- "$file"
  git commit -qm "Do $id"
}
