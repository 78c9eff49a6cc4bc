#!/usr/bin/env bash
# The benchmark (`make benchmark`): deploy the distro-defaults profile and the tuned
# one on the same sandbox, one after the other, and load-test each the same way
# (playbooks/loadtest.yml), so the ratios compare two set-ups measured in one run.
# Reports: reports/benchmark/{distro-defaults,tuned}/report.{json,md,png} and
# reports/benchmark/benchmark.{md,png}. Ends with the tuned profile deployed.
# About 15 minutes on a 2-core machine; every load step stops by itself.
source "$(dirname "$0")/lib.sh"
cd "$WEBTIER_ROOT"
export PATH="$VENV/bin:$PATH"
out="${WEBTIER_BENCHMARK_OUT:-$WEBTIER_ROOT/reports/benchmark}"
profile=profiles/distro-defaults
start=$SECONDS

say "sandbox containers"
ansible-playbook playbooks/sandbox.yml

say "deploy the distro-defaults profile"
python -m webtier.model.capacity inventory/sandbox --profile "$profile" || true
ansible-playbook -i inventory/sandbox -i "$profile" site.yml

say "load test: distro-defaults"
ansible-playbook -i inventory/sandbox -i "$profile" playbooks/loadtest.yml \
  -e loadtest_profile=distro-defaults -e "loadtest_out=$out/distro-defaults"

say "deploy the tuned profile (the sandbox inventory)"
python -m webtier.model.capacity inventory/sandbox
ansible-playbook site.yml

say "load test: tuned"
ansible-playbook playbooks/loadtest.yml -e loadtest_profile=tuned -e "loadtest_out=$out/tuned"

say "comparison"
python -m webtier.ops.loadtest compare "$out/distro-defaults" "$out/tuned" --out "$out"
say "benchmark done in $((SECONDS - start)) s: $out/benchmark.md"
# The CPU per request each profile measured, as inventory variables: the capacity
# model's calibration (the committed ones are what the next run's prediction uses).
echo "calibrations: $out/distro-defaults/cpu-demand.yml -> $profile/group_vars/all/,"
echo "              $out/tuned/cpu-demand.yml -> inventory/sandbox/group_vars/all/"
