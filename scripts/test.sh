#!/usr/bin/env bash
# The test command (`make test`, which .ci/run calls): set-up, then every stage, each
# timed. Stages: setup, lint, unit, molecule (each role scenario on Debian 13 and 12).
#   scripts/test.sh all            # everything, in that order
#   scripts/test.sh lint|unit|molecule [scenario-dir...]
source "$(dirname "$0")/lib.sh"
cd "$WEBTIER_ROOT"
export PATH="$VENV/bin:$PATH"
export PY_COLORS=0 ANSIBLE_NOCOLOR=1

declare -a names=() times=() results=()
failed=0

stage() { # stage NAME COMMAND...: run, time and record one stage
  local name="$1" start=$SECONDS rc=0
  shift
  say "stage: $name"
  "$@" || rc=$?
  names+=("$name"); times+=("$((SECONDS - start))")
  if [ "$rc" -eq 0 ]; then results+=(passed); else results+=("FAILED (rc=$rc)"); failed=$((failed + 1)); fi
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
echo "stages: $(( ${#names[@]} - failed )) passed, $failed failed"
[ "$failed" -eq 0 ]
