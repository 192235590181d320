#!/usr/bin/env python3
"""Per-learner cloud-init user-data for a classroom, from a roster (CSV: learner,node).

Each file is deploy/vm/user-data.yaml (clone obslab, bootstrap the lab VM) plus the classroom agent: its
config rendered by agent_config.py, the systemd unit, and the central store's password if there is one.

    python3 deploy/classroom/classroom_vms.py roster.csv --central http://10.0.0.5:8428 \\
        --central-password-file secret.txt --out build/classroom
    # -> build/classroom/<node>.user-data.yaml, one per roster line; boot each VM with its file.
"""

from __future__ import annotations

import argparse
import copy
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from agent_config import render_agent_config  # noqa: E402  (a sibling script, not a package)

BASE_USER_DATA = HERE.parent / "vm" / "user-data.yaml"
AGENT_UNIT = HERE / "obslab-classroom-agent.service"
CREDENTIAL = "/run/credentials/obslab-classroom-agent.service/central-password"


def parse_roster(text: str) -> list[tuple[str, str]]:
    """(learner, node) pairs from CSV text; a header line `learner,node` is optional; '#' lines are comments."""
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for n, row in enumerate(csv.reader(lines), start=1):
        cells = [c.strip() for c in row]
        if n == 1 and [c.lower() for c in cells] == ["learner", "node"]:
            continue
        if len(cells) != 2 or not all(cells):
            raise ValueError(f"roster line {n}: expected 'learner,node', got {row!r}")
        if cells[1] in seen:
            raise ValueError(f"roster line {n}: node {cells[1]!r} appears twice")
        seen.add(cells[1])
        rows.append((cells[0], cells[1]))
    if not rows:
        raise ValueError("the roster is empty")
    return rows


def user_data(
    learner: str, node: str, *, central_url: str, classroom: str, password: str | None, repo: str | None
) -> str:
    """cloud-config text for one lab VM of the class."""
    base: dict[str, Any] = yaml.safe_load(BASE_USER_DATA.read_text())
    cfg = copy.deepcopy(base)
    cfg["hostname"] = node
    agent = render_agent_config(
        learner=learner,
        node=node,
        central_url=central_url,
        classroom=classroom,
        central_user="obslab" if password else None,
        central_password_file=CREDENTIAL if password else None,
    )
    files = cfg["write_files"]
    if repo:
        for f in files:
            if f["path"] == "/etc/obslab/bootstrap.env":
                f["content"] = "".join(
                    f"OBSLAB_REPO={repo}\n" if line.startswith("OBSLAB_REPO=") else line + "\n"
                    for line in f["content"].splitlines()
                )
    files.append({"path": "/etc/obslab/classroom-agent.yml", "permissions": "0644", "content": agent})
    files.append(
        {
            "path": "/etc/systemd/system/obslab-classroom-agent.service",
            "permissions": "0644",
            "content": AGENT_UNIT.read_text(),
        }
    )
    if password:
        files.append({"path": "/etc/obslab/classroom-password", "permissions": "0600", "content": password})
    cfg["runcmd"] = [
        *cfg["runcmd"],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "obslab-classroom-agent.service"],
    ]
    return "#cloud-config\n" + yaml.safe_dump(cfg, sort_keys=False, width=120)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("roster", type=Path, help="CSV file: learner,node per line")
    ap.add_argument(
        "--central", required=True, help="the instructor's VictoriaMetrics, e.g. http://10.0.0.5:8428"
    )
    ap.add_argument("--central-password-file", type=Path, help="its -httpAuth.password, in a file")
    ap.add_argument("--classroom", default="default", help="class name (the `classroom` label)")
    ap.add_argument(
        "--repo", help="git URL of obslab for the VMs to clone (default: the one in user-data.yaml)"
    )
    ap.add_argument("--out", type=Path, required=True, help="directory for <node>.user-data.yaml files")
    args = ap.parse_args(argv)
    try:
        roster = parse_roster(args.roster.read_text())
        password = args.central_password_file.read_text().strip() if args.central_password_file else None
        args.out.mkdir(parents=True, exist_ok=True)
        for learner, node in roster:
            text = user_data(
                learner,
                node,
                central_url=args.central,
                classroom=args.classroom,
                password=password,
                repo=args.repo,
            )
            (args.out / f"{node}.user-data.yaml").write_text(text)
            print(f"{args.out / (node + '.user-data.yaml')}: {learner}", file=sys.stderr)
    except (OSError, ValueError) as e:
        print(f"classroom_vms: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
