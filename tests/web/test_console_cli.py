"""`obslab console` as a real process: waitress, a generated token printed as a URL, refusals."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from obslab.paths import REPO_ROOT
from obslab.procs import free_port, wait_http

OBSLAB = str(REPO_ROOT / ".venv" / "bin" / "obslab")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OBSLAB_TOKEN"}
    env["OBSLAB_STATE_DIR"] = str(tmp_path)
    env.update(extra)
    return env


def test_non_loopback_without_token_is_refused(tmp_path: Path) -> None:
    res = subprocess.run(
        [OBSLAB, "console", "--listen", f"0.0.0.0:{free_port()}"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2
    assert "refusing to bind" in res.stderr and "OBSLAB_TOKEN" in res.stderr


def test_short_token_is_refused(tmp_path: Path) -> None:
    res = subprocess.run(
        [OBSLAB, "console", "--listen", f"127.0.0.1:{free_port()}"],
        env=_env(tmp_path, OBSLAB_TOKEN="short"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2 and "too short" in res.stderr


def test_port_in_use_is_exit_3(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = subprocess.run(
            [OBSLAB, "console", "--listen", f"127.0.0.1:{port}"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert res.returncode == 3 and f"127.0.0.1:{port}" in res.stderr and "in use" in res.stderr


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1:http"])
def test_bad_listen_is_usage_error(tmp_path: Path, listen: str) -> None:
    res = subprocess.run(
        [OBSLAB, "console", "--listen", listen],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2, res.stderr


def test_generated_token_url_and_waitress(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "console.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [OBSLAB, "console", "--listen", f"127.0.0.1:{port}"],
            env=_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_http(f"http://127.0.0.1:{port}/static/console.css", timeout=60)
        deadline = time.monotonic() + 30
        while "open:" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        m = re.search(rf"open: (http://127\.0\.0\.1:{port}/\?token=(\S+))", log.read_text())
        assert m, log.read_text()
        token = m.group(2)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10)
        assert e.value.code == 401
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/health", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
            # Served by waitress, not Werkzeug's development server.
            assert r.headers["Server"] == "obslab-console"
        # The URL as printed logs a browser in: a redirect that sets the session cookie.
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(m.group(1), timeout=10) as r:
            assert r.status == 200 and r.url == f"http://127.0.0.1:{port}/"
            assert "Diagnose a real fault" in r.read().decode()
        assert "Werkzeug" not in log.read_text() and "development server" not in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
