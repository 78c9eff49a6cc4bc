"""The facts a role hands the package beside kernel_tuning_effective: one home for the
``facts`` option of the role_files action and the derived lookup
(extends_documentation_fragment webtier.stack.role_facts), read by
webtier.files.facts.Facts.read."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  facts:
    description:
      - Facts the role read from the host, by name (pid1_nofile_hard, ipv4,
        uwsgi_max_requests_delta, running_release, redis_sentinel_says, resolved,
        postgresql_verifiers), or
        C(getent), the output of C(getent ahostsv4 NAME) by name, read into resolved.
      - What neither this nor C(kernel_tuning_effective) gives is assumed from the
        inventory, as the render command does.
    type: dict
    default: {}
"""
