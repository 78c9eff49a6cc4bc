#!/usr/bin/env bash
# Kernel settings this machine needs as the host of the sandbox and test containers.
# Containers share the host's kernel, and global keys (vm.*, fs.*) cannot be set from
# inside one: the kernel_tuning role writes them in each container's sysctl drop-in but
# leaves applying them to the host. Persisted in /etc/sysctl.d for the next boot.
# - vm.overcommit_memory = 1: the Redis containers ask for it (Redis's own requirement:
#   background saves and replication fork).
# - fs.inotify.max_user_instances = 1024: every container runs systemd, and root in each
#   of them is root here, so they share root's inotify instances (128 by default). With
#   the sandbox up beside `make test`'s scenarios, 150 were in use and containers of a
#   scenario died within a second of their start (systemd could not start its manager).
source "$(dirname "$0")/lib.sh"

say "container host kernel settings"
dropin=/etc/sysctl.d/60-webtier-container-host.conf
declare -A wanted=([vm.overcommit_memory]=1 [fs.inotify.max_user_instances]=1024)
text="$(for key in vm.overcommit_memory fs.inotify.max_user_instances; do
  printf '%s = %s\n' "$key" "${wanted[$key]}"
done)"
if [ "$(cat "$dropin" 2>/dev/null)" != "$text" ]; then
  printf '%s\n' "$text" >"$dropin"
  changed "wrote $dropin"
fi
for key in vm.overcommit_memory fs.inotify.max_user_instances; do
  now="$(sysctl -n "$key")"
  if [ "$key" = fs.inotify.max_user_instances ] && [ "$now" -ge "${wanted[$key]}" ]; then
    ok "$key = $now (at least ${wanted[$key]})"
  elif [ "$now" != "${wanted[$key]}" ]; then
    sysctl -q -w "$key=${wanted[$key]}"
    changed "$key = ${wanted[$key]} (was $now)"
  else
    ok "$key = $now"
  fi
done
