#!/usr/bin/env bash
# Build a systemd base image for one Debian release from Debian packages only:
# debootstrap into a folder, trust the build host's local CAs, import into the engine.
#
#   images/base/build.sh debian13      # Debian 13 "trixie" (the default target)
#   images/base/build.sh debian12      # Debian 12 "bookworm"
#
# The image is tagged webtier-base:<target>-<recipe hash> and aliased as
# webtier-base:<target>. The recipe is this script, packages.txt, the suite and the
# host's local CA certificates: when none of them changed, nothing is rebuilt.
source "$(dirname "$0")/../../scripts/lib.sh"

target="${1:?usage: build.sh debian13|debian12}"
case "$target" in
  debian13) suite=trixie ;;
  debian12) suite=bookworm ;;
  *) die "unknown target '$target' (expected debian13 or debian12)" ;;
esac

here="$(cd "$(dirname "$0")" && pwd)"
image=webtier-base
ca_dir=/usr/local/share/ca-certificates

recipe_hash() {
  {
    cat "$here/build.sh" "$here/packages.txt"
    echo "$suite"
    find "$ca_dir" -type f -name '*.crt' 2>/dev/null | LC_ALL=C sort | xargs -r cat
  } | sha256sum | cut -c1-12
}

hash="$(recipe_hash)"
tag="$image:$target-$hash"

say "base image $image:$target (Debian $suite)"
if docker image inspect "$tag" >/dev/null 2>&1; then
  ok "$tag is current"
else
  apt_install debootstrap
  rootfs="$(mktemp -d "/var/tmp/webtier-rootfs-$target.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  packages="$(grep -Ev '^\s*(#|$)' "$here/packages.txt" | paste -sd, -)"
  start=$SECONDS
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" >"$rootfs.log" 2>&1 \
    || { tail -n 30 "$rootfs.log" >&2; die "debootstrap $suite failed (log: $rootfs.log)"; }
  rm -f "$rootfs.log"

  # Trust the build host's local CAs, so TLS through an inspecting proxy works inside.
  if compgen -G "$ca_dir/*.crt" >/dev/null; then
    cp "$ca_dir"/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the image"
  fi
  # systemd as PID 1 in a container: no consoles, no first-boot wizard, a fresh
  # machine-id per container.
  for unit in getty.target console-getty.service systemd-firstboot.service \
              systemd-udevd.service systemd-udev-trigger.service; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
  done
  : >"$rootfs/etc/machine-id"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  # The image carries no package lists: date the empty lists directory to the epoch so
  # that apt's cache_valid_time (Ansible) and similar checks see a stale cache.
  touch -d @0 "$rootfs"/var/lib/apt/lists

  rootfs_tag="$image-rootfs:$target-$hash"
  tar -C "$rootfs" -c . | docker import -m "webtier base image, Debian $suite, recipe $hash" \
    - "$rootfs_tag" >/dev/null
  # Image settings on top (`docker import -c` knows no STOPSIGNAL). `docker stop` sends
  # SIGRTMIN+3, which halts systemd: services stop as on a real shutdown (Gunicorn
  # drains its requests). systemd takes Docker's default SIGTERM as "re-execute", so
  # nothing would stop until the engine's SIGKILL: a power cut, not a shutdown.
  printf '%s\n' "FROM $rootfs_tag" 'ENV container=docker' 'STOPSIGNAL SIGRTMIN+3' \
    'CMD ["/lib/systemd/systemd"]' | docker build -q -t "$tag" - >/dev/null 2>"$rootfs.log" \
    || { cat "$rootfs.log" >&2; die "docker build of $tag failed"; }
  rm -f "$rootfs.log"
  docker rmi "$rootfs_tag" >/dev/null
  changed "built $tag in $((SECONDS - start)) s"
fi

if [ "$(docker image inspect -f '{{.Id}}' "$image:$target" 2>/dev/null)" != \
     "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
  docker tag "$tag" "$image:$target"
  changed "$image:$target -> $tag"
else
  ok "$image:$target -> $tag"
fi
