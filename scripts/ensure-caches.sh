#!/usr/bin/env bash
# Download caches the containers share, so that a test run (or a sandbox rebuild)
# fetches each Debian package and each Python wheel once:
#   - apt: a caching HTTP proxy for Debian's archive on this machine (nginx with
#     proxy_cache: images/apt-cache/nginx.conf), listening on the container engine's
#     bridge address only. Every container refreshes its own package lists and
#     installs through it; concurrent requests for one file make one fetch
#     (proxy_cache_lock). A shared /var/cache/apt directory instead would make
#     containers converged side by side fight over apt's locks. (apt-cacher-ng, the
#     usual tool, answers "503 Host not found" on this kind of machine: its own DNS
#     client does not get answers where the C library's does.)
#   - pip: one wheel and HTTP cache directory, mounted at /root/.cache/pip (the
#     python_app role runs pip as root); pip's cache is safe for concurrent use.
# The containers find both through files under $WEBTIER_CACHE (/var/cache/webtier),
# mounted by the Molecule harness and by playbooks/sandbox.yml:
#   $WEBTIER_CACHE/apt-proxy.conf -> /etc/apt/apt.conf.d/01webtier-proxy (read-only)
#   $WEBTIER_CACHE/pip            -> /root/.cache/pip
# Idempotent; needs a running container engine (scripts/ensure-docker.sh).
source "$(dirname "$0")/lib.sh"

say "download caches for the containers"
cache="${WEBTIER_CACHE:-/var/cache/webtier}"
port=3142
mkdir -p "$cache/pip" "$cache/apt"

if ! command -v nginx >/dev/null; then
  # Debian's package would start its default site on port 80; only this proxy is wanted.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt_install nginx
fi
chown www-data: "$cache/apt"

# The engine's default bridge address is this machine as every container sees it:
# containers on user-defined networks reach it too (host input, not forwarding).
bridge="$(docker network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}')"
gateway="$(ip -4 -o addr show dev "${bridge:-docker0}" 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}')"
[ -n "$gateway" ] || die "no IPv4 address on the container engine's bridge (${bridge:-docker0})"

conf="$cache/apt-cache.nginx.conf"
pid=/run/webtier-apt-cache.pid
sed -e "s|@LISTEN@|$gateway:$port|" -e "s|@CACHE@|$cache/apt|" -e "s|@PID@|$pid|" \
  "$WEBTIER_ROOT/images/apt-cache/nginx.conf" >"$conf.new"
nginx -q -t -c "$conf.new" || die "the apt cache's nginx config does not pass nginx -t"

answers() { curl -fsS -o /dev/null --max-time 2 "http://$gateway:$port/webtier-apt-cache"; }
# The pid file can outlive its nginx (a machine restored from a snapshot keeps /run):
# only a live process whose command line is this nginx counts, so that a reload never
# signals whatever process took the number since.
running() { [ -s "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$(cat "$pid")/cmdline" | grep -q "nginx.*$conf"; }

if running && cmp -s "$conf" "$conf.new" && answers; then
  rm -f "$conf.new"
  ok "apt cache answers on $gateway:$port"
else
  mv "$conf.new" "$conf"
  if running; then
    nginx -c "$conf" -s reload
    changed "apt cache reloaded on $gateway:$port"
  else
    nginx -c "$conf"
    changed "apt cache started on $gateway:$port"
  fi
  for _ in $(seq 1 20); do answers && break; sleep 0.5; done
  answers || die "the apt cache does not answer on $gateway:$port (log: $cache/apt-cache.error.log)"
fi

proxy="// Written by webtier scripts/ensure-caches.sh: Debian packages through the cache on
// the container engine's host (plain HTTP only; the images have no HTTPS source).
Acquire::http::Proxy \"http://$gateway:$port/\";"
if [ "$(cat "$cache/apt-proxy.conf" 2>/dev/null)" != "$proxy" ]; then
  printf '%s\n' "$proxy" >"$cache/apt-proxy.conf"
  changed "wrote $cache/apt-proxy.conf"
else
  ok "$cache/apt-proxy.conf and $cache/pip ready"
fi
