#!/usr/bin/env bash
# The no-op re-run time of both engines on the deployed sandbox, measured in one run
# (`make noop-times`; `make deploy` first). Each engine runs ROUNDS times (default 2),
# alternating, and must change nothing: a run that changes something fails the script.
# For Ansible it also counts the host-tasks (ok + skipped in the recap): what a no-op
# costs the controller grows with them.
source "$(dirname "$0")/lib.sh"
cd "$WEBTIER_ROOT"
export PATH="$VENV/bin:$PATH"
rounds="${ROUNDS:-2}"
log="$(mktemp -d)"
declare -a rows=()

timed() { # timed ENGINE COMMAND...: run, check nothing changed, record the seconds
  local engine="$1" start end
  shift
  start=$(date +%s%N)
  "$@" >"$log/$engine.out" 2>&1 || { tail -30 "$log/$engine.out"; die "$engine run failed"; }
  end=$(date +%s%N)
  case "$engine" in
    ansible) grep -E '^\S+ +: ok=' "$log/$engine.out" | grep -vq 'changed=0' && die "ansible changed something" ;;
    pyinfra) grep -Eq 'Grand total +[0-9]+ +- ' "$log/$engine.out" || die "pyinfra changed something" ;;
  esac
  local tenths=$(((end - start) / 100000000)) tasks=""
  # what the controller paid for: one forked worker per task and host, run or skipped
  [[ "$engine" == ansible ]] && tasks="$(awk '/^[^ ]+ +: ok=/ {
      for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "ok" || kv[1] == "skipped") n += kv[2] } }
    END { print n }' "$log/$engine.out")"
  rows+=("$engine $((tenths / 10)).$((tenths % 10)) $tasks")
}

for round in $(seq "$rounds"); do
  say "round $round"
  timed pyinfra pyinfra -y pyinfra_deploy/inventory.py pyinfra_deploy/deploy.py
  timed ansible ansible-playbook site.yml
done

say "no-op re-run time on the sandbox (s), nothing changed"
printf '    %-8s %8s  %s\n' engine seconds "host-tasks (ok + skipped)"
for row in "${rows[@]}"; do printf '    %-8s %8s  %s\n' $row; done
