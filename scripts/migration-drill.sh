#!/usr/bin/env bash
# A release that adds a migration, rolled out under load (`make migration-drill`): a
# copy of the Django demo with one more (nullable) column and its migration becomes
# release RELEASE (2), deployed with playbooks/deploy.yml to the Django hosts (app5,
# app6) one at a time while wrk keeps CONNECTIONS (256) connections on lb2's
# database-backed /db. Prints the failed requests (socket errors and non-2xx) and how
# often the migration was applied (django_migrations); exits 1 unless 0 and once.
# Bounded: wrk stops when the release is done, or after 600 s.
source "$(dirname "$0")/lib.sh"
cd "$WEBTIER_ROOT"
export PATH="$VENV/bin:$PATH"
release="${RELEASE:-2}" connections="${CONNECTIONS:-256}"
loadgen=webtier-sandbox-loadgen db=webtier-sandbox-db1
src="$(mktemp -d /tmp/webtier-django-release.XXXXXX)"
trap 'rm -rf "$src"' EXIT

say "release $release: the demo with a new column (notes.Note.tag) and its migration"
cp -r apps/demo_django/. "$src/"
sed -i '/created = models.DateTimeField/a\    tag = models.CharField(max_length=40, null=True, blank=True)' "$src/notes/models.py"
cat >"$src/notes/migrations/0002_note_tag.py" <<'PY'
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = (("notes", "0001_initial"),)
    operations = (
        migrations.AddField("note", "tag", models.CharField(max_length=40, null=True, blank=True)),
    )
PY

say "load generator (wrk on the sandbox's network)"
ansible-playbook playbooks/loadtest.yml --tags loadgen >/dev/null
docker exec -d "$loadgen" sh -c "timeout -s INT 600 wrk -t 2 -c $connections -d 600s --timeout 10s http://lb2/db >/tmp/drill.wrk 2>&1"
sleep 5

say "deploy.yml: release $release to app5 and app6, one at a time, under load"
start=$SECONDS
rc=0
ansible-playbook playbooks/deploy.yml -e deploy_release="$release" -e python_app_src="$src" \
  --limit app5,app6 >/tmp/migration-drill.deploy.log 2>&1 || rc=$?
say "deploy.yml: rc=$rc in $((SECONDS - start)) s (log: /tmp/migration-drill.deploy.log)"
grep -A3 "Run the release's commands" /tmp/migration-drill.deploy.log | grep -E "changed|skipping|ok:" || true
docker exec "$loadgen" pkill -INT wrk || true
sleep 3
out="$(docker exec "$loadgen" cat /tmp/drill.wrk)"
printf '%s\n' "$out"
errors="$(printf '%s\n' "$out" | awk '/Socket errors/ {gsub(",", ""); s += $4 + $6 + $8 + $10} /Non-2xx/ {s += $NF} END {print s + 0}')"
applied="$(docker exec "$db" runuser -u postgres -- psql -XAt -d notes -c \
  "SELECT count(*) || ' at ' || coalesce(max(applied)::text, '-') FROM django_migrations WHERE app = 'notes' AND name = '0002_note_tag'")"
say "result"
echo "    failed requests (socket errors + non-2xx): $errors"
echo "    migration 0002_note_tag applied: $applied"
[ "$rc" -eq 0 ] && [ "$errors" -eq 0 ] && [ "${applied%% *}" = 1 ]
