#!/usr/bin/env bash
# The deploy command (`make deploy`): sandbox containers up, `ansible-playbook site.yml`
# on them, then a smoke check of what is running. (`make deploy` runs `make setup` first.)
# The stack then serves on http://127.0.0.1:8080 (Flask, on Gunicorn and uWSGI),
# https://127.0.0.1:8443 (same, self-signed) and http://127.0.0.1:8090 (FastAPI).
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
