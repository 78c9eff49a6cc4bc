#!/usr/bin/env bash
# The test command (`make test`, which .ci/run calls): set-up, then every stage, each
# timed. Stages: setup, lint, unit, engines, consumer, scaffold, molecule (each scenario
# on Debian 13 and 12).
#   scripts/test.sh all            # everything: setup, then the Molecule scenarios with
#                                  # lint, unit and engines beside them at low priority
#   scripts/test.sh lint|unit|engines|consumer|scaffold [more of them...]
#   scripts/test.sh molecule [scenario-dir...]
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
# (A run nested in `all`, beside the scenarios, leaves the scenarios' steps alone.)
[ -n "${WEBTIER_STAGES_TSV:-}" ] || : >"$LOGS/steps.tsv"

stage() { # stage NAME COMMAND...: run, time, log and record one stage
  local name="$1" start=$SECONDS rc=0 log
  shift
  log="$LOGS/${name//[ \/]/_}.log"
  say "stage: $name"
  "$@" 2>&1 | step_times "$log" || rc=$?
  names+=("$name"); times+=("$((SECONDS - start))"); logs+=("$log")
  if [ "$rc" -eq 0 ]; then results+=(passed); else results+=("FAILED (rc=$rc)"); failed=$((failed + 1)); fi
}

step_times() { # step_times LOG: copy stdin to stdout and LOG; after a Molecule
  # scenario, the seconds each of its steps (create, converge, verify...) took, which
  # also go to $LOGS/steps.tsv (stage, step, seconds) for the summary.
  local log="$1" line step="" began=0 steps="" begin_re
  begin_re='\[[^]]* > ([a-z_]+)\] Executing$'
  : >"$log"
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\n' "$line"
    printf '%s\n' "$line" >>"$log"
    if [[ $line =~ $begin_re ]]; then
      step="${BASH_REMATCH[1]}" began=$SECONDS
    elif [[ -n $step && $line == *"> $step] Executed"* ]]; then
      steps+="$step $((SECONDS - began)) s, "
      printf '%s\t%s\t%s\n' "${log##*/}" "$step" "$((SECONDS - began))" >>"$LOGS/steps.tsv"
      step=""
    fi
  done
  [ -z "$steps" ] || printf '    steps: %s\n' "${steps%, }" | tee -a "$log"
}

record() { # record FILE: this run's stages as lines of name, seconds, result, log
  : >"$1"
  for i in "${!names[@]}"; do
    printf '%s\t%s\t%s\t%s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}" "${logs[$i]}" >>"$1"
  done
}

adopt() { # adopt FILE: stages another run recorded (record) join this run's summary
  local name time result log part="${1##*/}"
  part="${part%.tsv}"
  [ -s "$1" ] || { names+=("$part"); times+=(0); results+=("FAILED (no result)"); logs+=("$LOGS/$part.out"); failed=$((failed + 1)); return; }
  while IFS=$'\t' read -r name time result log; do
    names+=("$name"); times+=("$time"); results+=("$result"); logs+=("$log")
    [ "$result" = passed ] || failed=$((failed + 1))
  done <"$1"
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

unit() { # the package, the templates, the probe: no engine run of any length
  pytest -n "${WEBTIER_TEST_WORKERS:-auto}" tests/unit
}

engines() {
  # Both engines over inventories, no host contacted: the parity of the files Ansible
  # and pyinfra write, and preflight stopping site.yml on each bad inventory. Each case
  # runs ansible-playbook on one CPU: one worker per CPU (pytest-xdist), or
  # WEBTIER_TEST_WORKERS of them.
  pytest -n "${WEBTIER_TEST_WORKERS:-auto}" tests/engines
}

consumer() {
  # A project that is not this repository installs the collection from its artifact and
  # converges a container with it (tests/consumer). One container, no Molecule.
  pytest tests/consumer
}

scaffold() {
  # webtier-new-env --local, filled by script (a database tier, the Django demo from a
  # git repository), converged, released under load on its one app host, converged
  # with pyinfra, torn down (tests/scaffold). Four containers, no Molecule.
  pytest tests/scaffold
}

# The second lane of `all`: Redis's scenarios, uWSGI's and the whole-stack scenarios
# (molecule/default and molecule/pyinfra share their instances' names, so they run one
# after the other in one lane). Every other scenario, a new one too, runs in the first
# lane. The two lanes take about as long: in the clean-clone run of stop 47 (3,604 s),
# before the database scenario took in two backup repositories and the pyinfra
# scenario one, lane a had celery_worker, gunicorn, nginx, postgresql and uwsgi, lane b
# kernel_tuning, Redis's two and the whole stack's two; uWSGI's (273 s) and
# kernel_tuning's (147 s) then changed lanes.
LANE_B="roles/redis/molecule/default roles/redis/molecule/ha roles/uwsgi/molecule/default molecule/default molecule/pyinfra"

scenarios() { # every Molecule scenario directory: roles first, then the whole stack
  find roles -mindepth 4 -maxdepth 4 -path '*/molecule/*/molecule.yml' -printf '%h\n' | sort
  find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' 2>/dev/null | sort
}

leftovers() { # remove the containers and networks an aborted Molecule run left behind
  local containers network removed=""
  containers="$(docker ps -aq --filter label=owner=molecule)"
  # shellcheck disable=SC2086 # one argument per container id
  [ -z "$containers" ] || { docker rm -f $containers >/dev/null; removed=1; }
  for network in webtier-e2e webtier-pyinfra webtier-nginx webtier-redis-ha webtier-postgresql; do
    docker network inspect "$network" >/dev/null 2>&1 || continue
    docker network rm "$network" >/dev/null && removed=1
  done
  [ -z "$removed" ] || say "removed what an aborted Molecule run left"
}

molecule_one() { # molecule_one roles/ROLE/molecule/SCENARIO | molecule/SCENARIO
  # Each scenario keeps its state in an ephemeral directory of its own for this run:
  # Molecule's default one is named after the project directory's basename and outlives
  # an aborted run, whose "instances created" would make the next run skip create.
  local dir="$1" project scenario state rc=0
  scenario="$(basename "$dir")"
  project="$(dirname "$(dirname "$dir")")"
  state="$(mktemp -d /tmp/webtier-molecule.XXXXXX)"
  (cd "$project" && MOLECULE_EPHEMERAL_DIRECTORY="$state" molecule test -s "$scenario") || rc=$?
  rm -rf "$state"
  return "$rc"
}

case "${1:-all}" in
  all)
    stage setup scripts/setup.sh
    if [ "$failed" -eq 0 ]; then
      leftovers
      # Two lanes of Molecule scenarios run side by side: a scenario waits on its
      # containers for a third of its time, which the other lane's controller uses.
      # lint, unit, engines and the consumer test (one container) run beside the lanes on
      # one CPU at the lowest priority. Each lane's output and the side stages' follow, in turn.
      rm -f "$LOGS"/lane-*.tsv "$LOGS/side-stages.tsv"
      WEBTIER_STAGES_TSV="$LOGS/side-stages.tsv" WEBTIER_TEST_WORKERS=1 nice -n 19 \
        "$WEBTIER_ROOT/scripts/test.sh" lint unit engines consumer scaffold >"$LOGS/side-stages.out" 2>&1 &
      side=$!
      lanes=()
      lane_a=() lane_b=()
      for dir in $(scenarios); do
        if [[ " $LANE_B " == *" $dir "* ]]; then lane_b+=("$dir"); else lane_a+=("$dir"); fi
      done
      for lane in a b; do
        declare -n dirs="lane_$lane"
        say "lane $lane: ${dirs[*]}"
        WEBTIER_STAGES_TSV="$LOGS/lane-$lane.tsv" \
          "$WEBTIER_ROOT/scripts/test.sh" molecule "${dirs[@]}" >"$LOGS/lane-$lane.out" 2>&1 &
        lanes+=($!)
        unset -n dirs
      done
      wait "${lanes[@]}" "$side" || true
      for part in lane-a lane-b side-stages; do
        say "output of $part"
        sed -n '/^\x1b\[1m==> summary/q;p' "$LOGS/$part.out"
        adopt "$LOGS/$part.tsv"
      done
    fi
    ;;
  lint | unit | engines | consumer | scaffold)
    for name in "$@"; do stage "$name" "$name"; done
    [ -z "${WEBTIER_STAGES_TSV:-}" ] || record "$WEBTIER_STAGES_TSV"
    ;;
  molecule)
    shift
    # (A lane of `all` leaves the other lane's containers alone: `all` removed leftovers.)
    [ -n "${WEBTIER_STAGES_TSV:-}" ] || leftovers
    # shellcheck disable=SC2046 # one scenario directory per word
    [ $# -gt 0 ] || set -- $(scenarios)
    for dir in "$@"; do stage "molecule $dir" molecule_one "$dir"; done
    [ -z "${WEBTIER_STAGES_TSV:-}" ] || record "$WEBTIER_STAGES_TSV"
    ;;
  *) die "unknown stage '$1' (all, lint, unit, engines, consumer, scaffold, molecule)" ;;
esac

say "summary"
total=0
for i in "${!names[@]}"; do
  printf '    %-48s %6s s  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"
  steps="$(awk -F'\t' -v f="${logs[$i]##*/}" '$1 == f {printf "%s%s %s", sep, $2, $3; sep=", "}' "$LOGS/steps.tsv")"
  [ -z "$steps" ] || printf '        %s\n' "$steps"
  total=$((total + times[i]))
done
printf '    %-48s %6s s\n' "total of the stages" "$total"
printf '    %-48s %6s s\n' "wall time (stages beside the scenarios overlap)" "$SECONDS"
for i in "${!names[@]}"; do
  [ "${results[$i]}" = passed ] && continue
  say "why ${names[$i]} failed (whole log: ${logs[$i]#"$WEBTIER_ROOT"/})"
  why "${logs[$i]}"
done
echo "stages: $(( ${#names[@]} - failed )) passed, $failed failed"
[ "$failed" -eq 0 ]
