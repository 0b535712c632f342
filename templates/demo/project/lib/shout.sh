# shout TEXT: prints TEXT in capitals.
shout() {
  printf '%s\n' "$*" | tr '[:lower:]' '[:upper:]'
}
