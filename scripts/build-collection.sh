#!/usr/bin/env bash
# The collection artifact from an allow-list: the files git tracks, as they are in the
# working tree (their uncommitted edits too), and nothing else. A stray .env, key,
# vault password file or rendered output in the checkout is not tracked, so it is never
# copied, whatever galaxy.yml's build_ignore says (build_ignore then trims the tracked
# tree to what the collection ships).
#   scripts/build-collection.sh [OUTPUT_DIR [REPOSITORY]]   # default: build, this checkout
source "$(dirname "$0")/lib.sh"
out="$(realpath -m "${1:-$WEBTIER_ROOT/build}")"
repo="$(realpath "${2:-$WEBTIER_ROOT}")"
export PATH="$VENV/bin:$PATH"
stage="$(mktemp -d /tmp/webtier-collection.XXXXXX)"
trap 'rm -rf "$stage"' EXIT
# Tracked files that still exist (a deleted one is not shipped), copied with their modes.
(cd "$repo" && git ls-files -z --cached | while IFS= read -r -d '' f; do
  [ -e "$f" ] && printf '%s\0' "$f"
done) | (cd "$repo" && tar --null --no-recursion -T - -cf -) | tar -xf - -C "$stage"
mkdir -p "$out"
ansible-galaxy collection build --force --output-path "$out" "$stage"
