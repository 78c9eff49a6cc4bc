"""The documentation of the action plugin plugins/action/role_files.py (it writes a role's
config files through ansible.builtin.template, with what the role derives).
This file carries its documentation only (ansible-doc -t module webtier.stack.role_files)."""

DOCUMENTATION = r"""
module: role_files
short_description: Write a role's config files, with what the role derives
description:
  - Writes the files templates/files.yml lists for O(role) under O(template), with
    their destination, owner, group and mode, and the variables they render with (the
    role's own, and what the role derives from them and the host, by
    webtier.files.configs.role_files, the function the pyinfra engine and the render command
    call).
  - Each file goes through ansible.builtin.template, so check mode, diff and O(validate)
    behave as there. A template with a loop (one file per site, per queue) writes each.
  - Facts come from C(kernel_tuning_effective) when the play published it, and from
    O(facts); what neither gives is assumed from the inventory.
  - A secret file (C(secret) in templates/files.yml) never shows a diff.
author: webtier maintainers
options:
  role:
    description: The role whose files these are.
    type: str
    required: true
  template:
    description:
      - The template (its path under templates/), or a list of them, written in that
        order; all of the role's when omitted.
    type: raw
  validate:
    description: As ansible.builtin.template's (C(%s) is the candidate path).
    type: str
  candidate:
    description:
      - Write to /var/lib/webtier/candidates/<file name> instead, a scratch copy a check
        reads before the live file changes.
    type: bool
    default: false
  stage:
    description:
      - Write into the directory O(stage.to) instead, each file under its path below
        O(stage.from) (nginx's tree, checked as a whole before it goes live), or its
        name alone.
    type: dict
    suboptions:
      to:
        description: The staging directory.
        type: path
        required: true
      from:
        description: The live directory whose layout is kept.
        type: path
  suffix:
    description:
      - Write to the file's path with this suffix instead (a candidate beside the live
        file, for a module that puts it live).
    type: str
  render_dir:
    description:
      - Write on the controller, under O(render_dir)/<host>/<path>, with the facts the
        inventory gives (playbooks/render.yml); owner and group are left out.
    type: path
extends_documentation_fragment:
  - webtier.stack.role_facts
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Write the Gunicorn configuration (checked first)
  webtier.stack.role_files:
    role: gunicorn
    template: etc/gunicorn/gunicorn.conf.py.j2
    validate: /usr/local/sbin/webtier-unit-run ... --check-config --config %s
"""

RETURN = r"""
files:
  description:
    - Each file, in order - where it was written (dest), its place in templates/files.yml
      (path, owner, group, mode) and whether it changed.
  type: list
  elements: dict
  returned: always
dest:
  description: The path, when the template is one file.
  type: str
  returned: when one file
"""
