#!/usr/bin/env bash
# Kernel settings this machine needs as the host of the sandbox and test containers.
# Containers share the host's kernel, and global keys (vm.*) cannot be set from inside
# one: the kernel_tuning role writes them in each container's sysctl drop-in but
# leaves applying them to the host. The Redis containers ask for
# vm.overcommit_memory=1 (Redis's own requirement: background saves and replication
# fork), so the host sets it here; it is persisted in /etc/sysctl.d for the next boot.
source "$(dirname "$0")/lib.sh"

say "container host kernel settings"
dropin=/etc/sysctl.d/60-webtier-container-host.conf
wanted="vm.overcommit_memory = 1"
if [ "$(cat "$dropin" 2>/dev/null)" != "$wanted" ]; then
  printf '%s\n' "$wanted" >"$dropin"
  changed "wrote $dropin"
fi
if [ "$(sysctl -n vm.overcommit_memory)" != 1 ]; then
  sysctl -q -w vm.overcommit_memory=1
  changed "vm.overcommit_memory = 1 (was 0 or 2: Redis warns and may fail to fork)"
else
  ok "vm.overcommit_memory = 1"
fi
