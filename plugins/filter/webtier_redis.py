"""Thin Ansible wrapper: what the redis role derives before it templates (ACL password
hashes, bind addresses, whom to replicate) is computed by webtier.configs, the same
functions the pyinfra engine and the render command use."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from webtier import configs, derive


def webtier_redis_password_hashes(passwords):
    """{kind: password} -> {kind: SHA-256 hex digest}, as users.acl takes them."""
    return configs.redis_password_hashes(passwords)


def webtier_redis_nofile(maxclients):
    """The descriptors Redis needs: maxclients and what it keeps for itself."""
    return derive.redis_nofile(maxclients)


def webtier_redis_bind_addresses(bind, ipv4):
    """redis_bind with 'private' replaced by the host's address."""
    return configs.redis_bind_addresses(list(bind), ipv4 or None)


def webtier_redis_primary(group, port, announce_host, groups, hostvars, sentinel_says):  # noqa: PLR0913, PLR0917 (a Jinja2 filter's arguments are positional)
    """[replicaof ('host port' or '' on the primary), the primary's inventory host]."""
    try:
        return list(
            configs.redis_primary(group, port, announce_host, groups, hostvars, list(sentinel_says))
        )
    except (StopIteration, KeyError) as error:
        raise AnsibleFilterError(f"redis_replication_group={group}: no primary ({error})") from None


class FilterModule:
    def filters(self):
        return {
            "webtier_redis_nofile": webtier_redis_nofile,
            "webtier_redis_password_hashes": webtier_redis_password_hashes,
            "webtier_redis_bind_addresses": webtier_redis_bind_addresses,
            "webtier_redis_primary": webtier_redis_primary,
        }
