#!/usr/bin/env bash
# The test command (`make test`, which .ci/run calls): set-up, then every stage, each
# timed. Stages: setup, lint, unit, molecule (each role scenario on Debian 13 and 12).
#   scripts/test.sh all            # everything, in that order
#   scripts/test.sh lint|unit|molecule [scenario-dir...]
source "$(dirname "$0")/lib.sh"
cd "$WEBTIER_ROOT"
export PATH="$VENV/bin:$PATH"
export PY_COLORS=0 ANSIBLE_NOCOLOR=1

declare -a names=() times=() results=() logs=()
failed=0
# Each stage's whole output is also kept in reports/test/<stage>.log; the summary
# repeats what failed, so a CI page that shows only the end of the run says why.
LOGS="$WEBTIER_ROOT/reports/test"
mkdir -p "$LOGS"

stage() { # stage NAME COMMAND...: run, time, log and record one stage
  local name="$1" start=$SECONDS rc=0 log
  shift
  log="$LOGS/${name//[ \/]/_}.log"
  say "stage: $name"
  "$@" 2>&1 | tee "$log" || rc=$?
  names+=("$name"); times+=("$((SECONDS - start))"); logs+=("$log")
  if [ "$rc" -eq 0 ]; then results+=(passed); else results+=("FAILED (rc=$rc)"); failed=$((failed + 1)); fi
}

why() { # why LOG: the lines of a failed stage that say what failed, else its last lines
  local lines
  lines="$(grep -E '^(FAILED|ERROR) [^-]|^E  |^(fatal|failed): \[|^CRITICAL|^ERROR[: ]|^[^ ]+ +: ok=.* failed=[1-9]' "$1" || true)"
  [ -n "$lines" ] || lines="$(tail -n 15 "$1")"
  cut -c1-240 <<<"$lines" | tail -n 40
}

lint() {
  yamllint --strict . && ansible-lint --strict && ruff check . && ruff format --check .
}

unit() {
  pytest tests/unit
}

scenarios() { # every Molecule scenario directory: roles first, then the whole stack
  find roles -mindepth 4 -maxdepth 4 -path '*/molecule/*/molecule.yml' -printf '%h\n' | sort
  find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' 2>/dev/null | sort
}

molecule_one() { # molecule_one roles/ROLE/molecule/SCENARIO | molecule/SCENARIO
  local dir="$1" project scenario
  scenario="$(basename "$dir")"
  project="$(dirname "$(dirname "$dir")")"
  (cd "$project" && molecule test -s "$scenario")
}

case "${1:-all}" in
  all)
    stage setup scripts/setup.sh
    if [ "$failed" -eq 0 ]; then
      stage lint lint
      stage unit unit
      for dir in $(scenarios); do stage "molecule $dir" molecule_one "$dir"; done
    fi
    ;;
  lint) stage lint lint ;;
  unit) stage unit unit ;;
  molecule)
    shift
    for dir in "${@:-$(scenarios)}"; do stage "molecule $dir" molecule_one "$dir"; done
    ;;
  *) die "unknown stage '$1' (all, lint, unit, molecule)" ;;
esac

say "summary"
total=0
for i in "${!names[@]}"; do
  printf '    %-48s %6s s  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"
  total=$((total + times[i]))
done
printf '    %-48s %6s s\n' "total" "$total"
for i in "${!names[@]}"; do
  [ "${results[$i]}" = passed ] && continue
  say "why ${names[$i]} failed (whole log: ${logs[$i]#"$WEBTIER_ROOT"/})"
  why "${logs[$i]}"
done
echo "stages: $(( ${#names[@]} - failed )) passed, $failed failed"
[ "$failed" -eq 0 ]
