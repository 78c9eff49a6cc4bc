"""Thin Ansible wrapper: the NOFILE limit services get is computed by webtier.configs,
the same function the pyinfra engine and the render command use."""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from webtier import configs


def webtier_nofile_effective(nofile, nr_open, in_container, pid1_hard):
    """kernel_tuning_nofile capped by what the host can grant ('unlimited': no cap)."""
    pid1 = None if str(pid1_hard) == "unlimited" else int(pid1_hard)
    return configs.nofile_effective(
        int(nofile), int(nr_open), boolean(in_container, strict=True), pid1
    )


class FilterModule:
    def filters(self):
        return {"webtier_nofile_effective": webtier_nofile_effective}
