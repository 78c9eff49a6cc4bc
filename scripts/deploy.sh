#!/usr/bin/env bash
# The deploy command (`make deploy`): sandbox containers up, `ansible-playbook site.yml`
# on them, then a smoke check of what is running. (`make deploy` runs `make setup` first.)
#
# Today site.yml has one tier: kernel tuning. The web tiers (Redis, app servers,
# nginx) land with their issues; until then nothing serves HTTP and the smoke check
# shows the kernel limits every later tier will be sized against.
source "$(dirname "$0")/lib.sh"
cd "$WEBTIER_ROOT"
export PATH="$VENV/bin:$PATH"

say "sandbox containers"
ansible-playbook playbooks/sandbox.yml

say "ansible-playbook site.yml"
start=$SECONDS
ansible-playbook site.yml
say "site.yml converged in $((SECONDS - start)) s"

say "smoke check"
ansible-playbook playbooks/smoke.yml
echo "No HTTP tier yet: the app servers and nginx arrive with their roles."
