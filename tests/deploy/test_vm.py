"""deploy/vm: the cloud-init user-data and the Vagrantfile produce a lab VM through deploy/vm/bootstrap.sh.

A VM cannot boot here; what is checked: cloud-init's own schema validator on the user-data (when Debian's
cloud-init is installed: it is not a project dependency, since installing it on a lab machine would change how
that machine boots), shell syntax of every script, and that each path the recipes name exists in the checkout.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from obslab.paths import DEPLOY_DIR, REPO_ROOT

VM = DEPLOY_DIR / "vm"
USER_DATA = VM / "user-data.yaml"


def _user_data() -> dict:
    text = USER_DATA.read_text()
    assert text.startswith("#cloud-config\n"), "cloud-init ignores user-data without the #cloud-config header"
    return dict(yaml.safe_load(text))


def test_user_data_schema_with_cloud_init(tmp_path: Path) -> None:
    if not shutil.which("cloud-init"):
        pytest.skip("cloud-init is not installed (apt-get install cloud-init to run its schema validator)")
    r = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(USER_DATA)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and "Valid cloud-config" in r.stdout, r.stdout + r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(USER_DATA.read_text().replace("package_update: true", "package_update: sometimes"))
    r = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode != 0, "the validator must reject a wrong type (so the check above can fail)"


def test_user_data_bootstraps_from_the_checkout(tmp_path: Path) -> None:
    ud = _user_data()
    assert {"git", "make"} <= set(ud["packages"])
    files = {f["path"]: f for f in ud["write_files"]}
    env = dict(
        line.split("=", 1)
        for line in files["/etc/obslab/bootstrap.env"]["content"].splitlines()
        if line and not line.startswith("#")
    )
    assert set(env) == {"OBSLAB_REPO", "OBSLAB_REF", "OBSLAB_DIR"}
    script = files["/usr/local/sbin/obslab-cloud-init"]
    assert script["permissions"] == "0755"
    assert ["/usr/local/sbin/obslab-cloud-init"] in ud["runcmd"]
    # The embedded script is valid bash and runs the checkout's bootstrap at the documented place.
    path = tmp_path / "obslab-cloud-init"
    path.write_text(script["content"])
    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert '"$OBSLAB_DIR/deploy/vm/bootstrap.sh"' in script["content"]
    assert (REPO_ROOT / "deploy" / "vm" / "bootstrap.sh").exists()


@pytest.mark.parametrize("script", ["vm/bootstrap.sh", "systemd/install.sh"])
def test_scripts_parse_and_are_executable(script: str) -> None:
    path = DEPLOY_DIR / script
    assert path.stat().st_mode & 0o111, f"{script} must be executable (runcmd/Vagrant run it directly)"
    r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_bootstrap_uses_what_exists() -> None:
    text = (VM / "bootstrap.sh").read_text()
    assert "make setup" in text
    targets = re.findall(r"^([a-z-]+):", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert "setup" in targets
    for unit in re.findall(r"(obslab[a-z-]*\.service)", text):
        assert (DEPLOY_DIR / "systemd" / unit).exists(), unit


def test_vagrantfile() -> None:
    text = (VM / "Vagrantfile").read_text()
    assert re.search(r'config\.vm\.box = "[^"]*ubuntu-24\.04"', text)
    m = re.search(r'config\.vm\.synced_folder "([^"]+)", "([^"]+)"', text.split("disabled: true", 1)[1])
    assert m, "the checkout must be synced into the VM"
    source, target = m.groups()
    assert (VM / source).resolve() == REPO_ROOT.resolve()
    inline = re.search(r'inline: "([^"]+)"', text)
    assert inline and inline.group(1) == f"{target}/deploy/vm/bootstrap.sh"
    # No forwarded ports: the services bind the guest's loopback, which NAT forwarding cannot reach.
    assert "forwarded_port" not in text
    if shutil.which("ruby"):
        r = subprocess.run(
            ["ruby", "-c", str(VM / "Vagrantfile")], capture_output=True, text=True, timeout=30
        )
        assert r.returncode == 0, r.stderr
