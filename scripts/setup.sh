#!/usr/bin/env bash
# One set-up entry point (`make setup`): everything the deploy and the tests need on a
# fresh Debian 12 machine, idempotent (a second run changes nothing and takes seconds).
#   1. Debian packages the controller needs (python3-venv, debootstrap, wrk, ssh, ...);
#   2. the virtualenv .venv from requirements.txt (re-installed only when it changes;
#      --controller: requirements-controller.txt and the webtier package only);
#   3. a running Docker engine (scripts/ensure-docker.sh) and the kernel settings its
#      containers need from their host (scripts/container-host.sh);
#   4. the download caches the containers share (scripts/ensure-caches.sh);
#   5. the systemd base images for Debian 13 and Debian 12 (images/base/build.sh).
# `scripts/setup.sh --controller` (`make controller`) stops after 2: what a deployer to
# real hosts over SSH needs, with no container engine, image or host sysctl.
source "$(dirname "$0")/lib.sh"
cd "$WEBTIER_ROOT"
start=$SECONDS

controller_only=false
[ "${1:-}" = --controller ] && controller_only=true

say "controller packages"
if $controller_only; then
  apt_install python3-venv openssh-client
else
  apt_install python3-venv debootstrap wrk curl openssh-client nghttp2-client
fi

say "virtualenv $VENV"
stamp="$VENV/.requirements.sha256"
if $controller_only; then
  requirements=(-c constraints.txt -r requirements-controller.txt -e .)
else
  requirements=(-r requirements.txt)
fi
want="$( (echo "${requirements[*]}"; cat requirements*.txt constraints.txt pyproject.toml) | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  ok "requirements unchanged"
else
  python="${PYTHON:-python3}"
  "$python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
    || die "$python is older than 3.11"
  [ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
  # (grep: this machine's pip config names optional local indexes; their absence is noise.)
  "$VENV/bin/pip" install --quiet --upgrade pip 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
  "$VENV/bin/pip" install --quiet "${requirements[@]}" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
  echo "$want" >"$stamp"
  changed "installed ${requirements[*]} into $VENV"
fi

if $controller_only; then
  say "controller set-up done in $((SECONDS - start)) s (collections: the pip ansible bundle and collections/)"
  exit 0
fi

"$WEBTIER_ROOT/scripts/ensure-docker.sh"
"$WEBTIER_ROOT/scripts/container-host.sh"
"$WEBTIER_ROOT/scripts/ensure-caches.sh"
for target in debian13 debian12; do
  "$WEBTIER_ROOT/images/base/build.sh" "$target"
done

say "set-up done in $((SECONDS - start)) s"
