"""nginx's rendered configuration through gixy-ng, the nginx configuration analyzer.

Every load balancer's tree (nginx.conf, the shared http settings, the sites) is rendered
from the inventory, as the nginx role writes it, into a scratch directory and analysed
as a whole (gixy follows the includes). A finding stops preflight in both engines, and
the render command, with gixy's own explanation. The model's own checks stay where
gixy has none: listen backlogs against somaxconn, the descriptor budget, which upstream
a location names, an alias into a system directory (webtier.model.schema); gixy's
``alias_traversal`` covers the alias/path slash rule the model also refuses before any
file is rendered.

Suppressions (:data:`SKIPPED`) are listed with their reason; nothing else is skipped.

    python -m webtier.checks.nginxscan OUT   # every nginx tree a render wrote (make render)
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from webtier.files import configs
from webtier.files.facts import Facts
from webtier.model.schema import Finding

#: gixy checks not run, each with why.
SKIPPED = {
    "worker_rlimit_nofile_vs_connections": (
        "nginx.conf sets no worker_rlimit_nofile on purpose: the unit's sandbox denies "
        "setrlimit (@resources), and the descriptor limit comes from the unit's "
        "LimitNOFILE (nginx_worker_rlimit_nofile), which the capacity model holds to "
        "worker_connections (client and upstream connections alike) plus the files"
    ),
    "missing_resolver": (
        "the upstreams' servers are the inventory's own hosts by name, resolved when nginx "
        "starts or reloads, and every converge that changes a host reloads it; re-resolving "
        "while running needs a server's `resolve` parameter (nginx 1.27.3 or later) and a "
        "resolver, which Debian 12's nginx (1.22) and Debian 13's (1.26) do not have"
    ),
}


def scan(nginx_conf: Path) -> list[dict[str, Any]]:
    """gixy's findings for the tree whose main file is ``nginx_conf``, as its JSON gives
    them (plugin, summary, reason, file, line, reference, severity)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gixy",
            "--format",
            "json",
            "--skips",
            ",".join(SKIPPED),
            str(nginx_conf),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        raise RuntimeError(f"gixy could not read {nginx_conf}: {proc.stderr.strip()}") from None


def finding(host: str, root: Path, issue: Mapping[str, Any]) -> Finding:
    where = Path(issue.get("file") or issue.get("path") or "nginx.conf")
    with contextlib.suppress(ValueError):
        where = where.relative_to(root)
    return Finding(
        host,
        "nginx_sites",
        f"/{where}:{issue.get('line', '?')}",
        f"gixy's {issue['plugin']} check ({issue['severity']}): {issue['summary']}: "
        f"{issue.get('reason', '').rstrip('.')}",
        f"see {issue.get('reference', 'gixy --help')}",
    )


def check(hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]]):
    """gixy over each load balancer's nginx tree, rendered from ``hostvars`` (what an
    engine resolved for every host), as :class:`Finding` s."""
    found: list[Finding] = []
    for lb in groups.get("loadbalancers", []):
        v = configs.resolved_variables(lb, hostvars[lb], groups)
        try:
            files = configs.rendered("nginx", v, Facts.assumed(v), groups, hostvars)
        except (ValueError, KeyError):
            # A plan the nginx role refuses itself, with its own message, before it
            # changes the host (tasks/validate.yml): there is no tree to analyse.
            continue
        with tempfile.TemporaryDirectory(prefix="webtier-gixy-") as scratch:
            root = Path(scratch)
            for file in files:
                path = root / file.dest.lstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(file.content)
            found += [finding(lb, root, i) for i in scan(root / "etc/nginx/nginx.conf")]
    return found


def check_render(out: Path) -> list[Finding]:
    """gixy over every nginx tree a render wrote (``out/<host>/etc/nginx``)."""
    return [
        finding(conf.parents[2].name, conf.parents[2], issue)
        for conf in sorted(out.glob("*/etc/nginx/nginx.conf"))
        for issue in scan(conf)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    out = Path((argv if argv is not None else sys.argv[1:])[0])
    found = check_render(out)
    for one in found:
        print(f"gixy: {one}")
    trees = len(list(out.glob("*/etc/nginx/nginx.conf")))
    print(f"gixy-ng: {len(found)} finding(s) in {trees} nginx tree(s) under {out}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
