#!/usr/bin/env bash
# The database tier under load (`make db-bench`): the Django demo's database-backed
# endpoint (/db, one query per request through PgBouncer) at CONNECTIONS (2,048) for
# SECONDS (30) from the sandbox's load generator, through lb2, while the server
# connections PgBouncer opens are counted in pg_stat_activity every 0.2 s on db1.
# Prints wrk's summary, the most server connections seen and the pool they must stay
# within; exits 1 on a failed request or a connection beyond the pool. A report, not a
# test: make test never runs it.
source "$(dirname "$0")/lib.sh"
cd "$WEBTIER_ROOT"
export PATH="$VENV/bin:$PATH"
connections="${CONNECTIONS:-2048}" seconds="${SECONDS_RUN:-30}"
db=webtier-sandbox-db1 loadgen=webtier-sandbox-loadgen
user=notes

say "load generator (wrk on the sandbox's network)"
ansible-playbook playbooks/loadtest.yml --tags loadgen >/dev/null

pool="$(docker exec "$db" sh -c "awk -F' *= *' '/^default_pool_size/ {p=\$2} /^reserve_pool_size/ {r=\$2} END {print p + r}' /etc/pgbouncer/pgbouncer.ini")"
say "sampling pg_stat_activity on db1 (user $user, pool + reserve = $pool)"
# Bounded: it stops by itself after the run's seconds and a margin.
docker exec -d "$db" sh -c "end=\$((\$(date +%s) + $seconds + 15)); : >/tmp/db-bench.samples;
  while [ \$(date +%s) -lt \$end ]; do
    runuser -u postgres -- psql -XAtc \"SELECT count(*) FROM pg_stat_activity WHERE usename = '$user'\" >>/tmp/db-bench.samples
    sleep 0.2
  done"

say "wrk: $connections connections for $seconds s on http://lb2/db"
# webtier.ops.wrk: wrk with its results as data (its Lua done hook), as the load test reads them.
out="$(python -m webtier.ops.wrk --container "$loadgen" -c "$connections" -d "$seconds" http://lb2/db)"
printf '%s\n' "$out" | tail -n 1
sleep 16
max="$(docker exec "$db" sh -c 'sort -n /tmp/db-bench.samples | tail -1')"
samples="$(docker exec "$db" sh -c 'wc -l </tmp/db-bench.samples')"
errors="$(printf '%s\n' "$out" | head -n 1 |
  python -c 'import json, sys; r = json.load(sys.stdin); print(r["socket_errors"] + r["non_2xx_3xx"])')"
say "result"
echo "    failed requests (socket errors + non-2xx): $errors"
echo "    server connections of $user: at most $max in $samples samples (pool + reserve: $pool)"
[ "$errors" -eq 0 ] && [ "$max" -le "$pool" ]
