"""The systemd units in deploy/ pass `systemd-analyze verify` (where systemd is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTALLED_AT = "/opt/mutualaid/.venv/bin/mutualaid"


def test_there_are_units_for_the_server_the_worker_and_a_witness() -> None:
    units = {path.name: path.read_text() for path in DEPLOY.glob("*.service")}
    assert set(units) == {
        "mutualaid-server.service",
        "mutualaid-worker.service",
        "mutualaid-witness.service",
    }
    for name, text in units.items():
        assert "Restart=" in text and "EnvironmentFile=" in text, name
        assert "User=mutualaid" in text, name
    assert f"ExecStart={INSTALLED_AT} worker" in units["mutualaid-worker.service"]
    nginx = (DEPLOY / "nginx-mutualaid.conf").read_text()
    assert "client_max_body_size 21m;" in nginx
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (CI runs it where systemd is)")
    # verify checks that ExecStart= exists: point it at a stand-in for the installed command.
    stand_in = tmp_path / "mutualaid"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    for unit in DEPLOY.glob("*.service"):
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED_AT, str(stand_in)))
    done = subprocess.run(
        [analyze, "verify", *sorted(str(p) for p in tmp_path.glob("*.service"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
