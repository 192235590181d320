#!/usr/bin/env python3
"""Render the Prometheus agent config a classroom lab VM runs (``prometheus --enable-feature=agent``).

The agent scrapes the lab VM's exporters directly (host, ebpf, and demo, which also serves the lab state
``obslab_lab_active`` / ``obslab_lab_fault_active``) and federates, from the VM's own Prometheus (the one
``obslab up`` runs, which evaluates the alert rules), the series only that Prometheus has: ``ALERTS``.
Everything goes to one central VictoriaMetrics by remote write.

Labels: every lab VM scrapes ``127.0.0.1:<port>``, so the default ``instance`` would be the same on every VM.
The agent therefore sets ``instance`` to the node's name on its direct targets, and adds ``learner`` and
``classroom`` as external labels (external labels never override a label a series already has, which is why
``instance`` cannot be one of them).

    python3 deploy/classroom/agent_config.py --learner alice --node lab-07 \\
        --central http://instructor:8428 > /etc/obslab/classroom-agent.yml

Standard library plus PyYAML only, so it runs from Debian's python3 (python3-yaml) or obslab's .venv.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

#: Job name -> default local target, as the lab stack (`obslab up`) serves them (obslab/config.py).
DEFAULT_JOBS: dict[str, str] = {
    "host": "127.0.0.1:19100",
    "ebpf": "127.0.0.1:19101",
    "demo": "127.0.0.1:19200",
}
DEFAULT_LOCAL_PROMETHEUS = "127.0.0.1:19090"
#: What the agent pulls from the local Prometheus: alert state (rules run there; an agent evaluates none).
FEDERATE_MATCH = ['{__name__="ALERTS"}']
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$")


def render_agent_config(
    *,
    learner: str,
    node: str,
    central_url: str,
    jobs: Mapping[str, str] = DEFAULT_JOBS,
    local_prometheus: str | None = DEFAULT_LOCAL_PROMETHEUS,
    classroom: str = "default",
    scrape_interval: str = "5s",
    extra_external_labels: Mapping[str, str] | None = None,
    central_user: str | None = None,
    central_password_file: str | None = None,
) -> str:
    """Agent-mode Prometheus YAML for one lab VM; raises ValueError on a label value unsafe in a config."""
    for name, value in (("learner", learner), ("node", node), ("classroom", classroom)):
        if not _LABEL_VALUE.match(value):
            raise ValueError(f"{name} {value!r}: use letters, digits, '.', '_', '-' or '@' (max 63)")
    if not central_url.startswith(("http://", "https://")):
        raise ValueError(f"central URL {central_url!r} must start with http:// or https://")
    external = {"learner": learner, "classroom": classroom, **(extra_external_labels or {})}
    scrape_configs: list[dict[str, Any]] = []
    for job, target in jobs.items():
        scrape_configs.append(
            {"job_name": job, "static_configs": [{"targets": [target], "labels": {"instance": node}}]}
        )
    if local_prometheus:
        scrape_configs.append(
            {
                "job_name": "federate",
                "honor_labels": True,  # keep the alert's own job/instance labels
                "metrics_path": "/federate",
                "params": {"match[]": list(FEDERATE_MATCH)},
                "static_configs": [{"targets": [local_prometheus], "labels": {"instance": node}}],
            }
        )
    remote_write: dict[str, Any] = {
        "url": central_url.rstrip("/") + "/api/v1/write",
        # Lab VMs come and go; a short queue with retries is enough, and the WAL covers restarts.
        "queue_config": {"max_samples_per_send": 2000, "batch_send_deadline": "5s"},
    }
    if central_user:
        if not central_password_file:
            raise ValueError(
                "--central-user needs --central-password-file (the password never goes in the config)"
            )
        remote_write["basic_auth"] = {"username": central_user, "password_file": central_password_file}
    cfg: dict[str, Any] = {
        # No evaluation_interval: an agent evaluates no rules.
        "global": {"scrape_interval": scrape_interval, "external_labels": external},
        "scrape_configs": scrape_configs,
        "remote_write": [remote_write],
    }
    return yaml.safe_dump(cfg, sort_keys=False)


def _parse_job(text: str) -> tuple[str, str]:
    name, sep, target = text.partition("=")
    if not sep or not name or ":" not in target:
        raise argparse.ArgumentTypeError(
            f"--job {text!r}: expected NAME=HOST:PORT, e.g. host=127.0.0.1:19100"
        )
    return name, target


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--learner", required=True, help="who works on this VM (becomes the `learner` label)")
    ap.add_argument("--node", required=True, help="this VM's name (becomes `instance` on its series)")
    ap.add_argument("--central", required=True, help="VictoriaMetrics base URL, e.g. http://instructor:8428")
    ap.add_argument("--classroom", default="default", help="class name label (several classes, one VM)")
    ap.add_argument(
        "--job",
        action="append",
        type=_parse_job,
        help="NAME=HOST:PORT to scrape (repeatable); default: host, ebpf and demo on their stack ports",
    )
    ap.add_argument(
        "--local-prometheus",
        default=DEFAULT_LOCAL_PROMETHEUS,
        help="the lab VM's own Prometheus, federated for ALERTS; '' to skip",
    )
    ap.add_argument("--scrape-interval", default="5s")
    ap.add_argument(
        "--central-user", help="basic-auth user of the central VictoriaMetrics (-httpAuth.username)"
    )
    ap.add_argument(
        "--central-password-file",
        help="file holding that user's password, readable by the agent (e.g. /etc/obslab/classroom-password)",
    )
    args = ap.parse_args(argv)
    try:
        text = render_agent_config(
            learner=args.learner,
            node=args.node,
            central_url=args.central,
            jobs=dict(args.job) if args.job else DEFAULT_JOBS,
            local_prometheus=args.local_prometheus or None,
            classroom=args.classroom,
            scrape_interval=args.scrape_interval,
            central_user=args.central_user,
            central_password_file=args.central_password_file,
        )
    except ValueError as e:
        print(f"agent_config: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
