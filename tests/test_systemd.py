"""The systemd units in systemd/: systemd itself accepts them, and they are as hardened as promised.

What `systemd-analyze verify` (systemd 252, Debian 12) needs, found by trying it:

- every Exec*= program must exist and be executable ("Command … is not executable" is the one
  thing that makes it exit non-zero), so the copies under test point ExecStart at this
  checkout's `postroom`; ExecReload's /bin/kill must exist too;
- `User=` and `Group=` need not exist: verify does not look users up (the postroom user is
  made at install time, see docs/operations.md);
- unknown keys and bad values ("Failed to parse boolean value", "Unknown key") are only
  warnings and leave the exit code 0, so the test also fails on any output line that names
  one of our units; lines about the host's own units are ignored.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
UNIT_DIR = REPO_ROOT / "systemd"
SERVICES = ("postroom-ingest.service", "postroom-web.service", "postroom-worker.service")
TARGET = "postroom.target"
INSTALLED_BINARY = "/opt/postroom/.venv/bin/postroom"
CONFIG = "/etc/postroom/postroom.toml"
DATA_DIR = "/var/lib/postroom"
IN_CI = os.environ.get("CI") == "true"


@dataclass(frozen=True)
class Directive:
    section: str
    key: str
    value: str
    line: int
    commented: bool  # the line right above is a comment


def read_unit(path: Path) -> list[Directive]:
    """Parse a unit file into its directives, in order (keys may repeat, so no configparser)."""
    directives = []
    section = ""
    previous = ""
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith(("#", ";")):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}:{number}: not a directive: {raw!r}"
            directives.append(
                Directive(section, key.strip(), value.strip(), number, previous.startswith("#"))
            )
        previous = line
    return directives


def values(directives: list[Directive], section: str, key: str) -> list[str]:
    return [d.value for d in directives if d.section == section and d.key == key]


def one(directives: list[Directive], section: str, key: str) -> str:
    found = values(directives, section, key)
    assert len(found) == 1, f"[{section}] {key}= expected once, found {found}"
    return found[0]


def seconds(value: str) -> float:
    """A systemd time span such as `90s`, `2min` or `1min 30s`, in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


@pytest.fixture(scope="module")
def analyze() -> str:
    """Path of systemd-analyze; as root, install Debian's systemd package if it is missing."""
    found = shutil.which("systemd-analyze")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in ("update", "install -y systemd"):
            proc = subprocess.run(
                ["apt-get", "-qq", *command.split()],
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
        found = shutil.which("systemd-analyze")
        if found:
            return found
        reason = f"`apt-get install -y systemd` did not provide systemd-analyze: {proc.stderr}"
    else:
        reason = "systemd-analyze is missing (as root with apt-get, this test installs it)"
    if IN_CI:
        pytest.fail(f"systemd-analyze is required on CI: {reason}")
    pytest.skip(reason)


def runnable_copies(folder: Path) -> list[Path]:
    """Copy the units to `folder` with ExecStart pointing at a program that exists here."""
    here = REPO_ROOT / ".venv" / "bin" / "postroom"
    if not os.access(here, os.X_OK):
        here = Path(sys.executable).with_name("postroom")
    assert os.access(here, os.X_OK), f"no postroom executable at {here}"
    copies = []
    for name in (*SERVICES, TARGET):
        text = (UNIT_DIR / name).read_text()
        (folder / name).write_text(text.replace(INSTALLED_BINARY, str(here)))
        copies.append(folder / name)
    return copies


def test_systemd_analyze_verify_accepts_the_units_and_the_target(analyze, tmp_path):
    units = runnable_copies(tmp_path)
    proc = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    output = proc.stdout + proc.stderr
    ours = [line for line in output.splitlines() if any(u.name in line for u in units)]
    assert proc.returncode == 0, f"systemd-analyze verify exited {proc.returncode}:\n{output}"
    assert not ours, "systemd-analyze verify complains about our units:\n" + "\n".join(ours)


def test_verify_catches_a_misspelt_directive(analyze, tmp_path):
    """The check above is not blind: a typo in a unit shows up as a line naming the file."""
    units = runnable_copies(tmp_path)
    ingest = tmp_path / SERVICES[0]
    ingest.write_text(ingest.read_text().replace("PrivateTmp=yes", "PrivateTmp=yess"))
    proc = subprocess.run(
        [analyze, "verify", "--man=no", str(ingest), str(units[-1])],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert SERVICES[0] in proc.stdout + proc.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_as_postroom_with_the_promised_hardening(name):
    unit = read_unit(UNIT_DIR / name)
    command = name.removeprefix("postroom-").removesuffix(".service")

    assert one(unit, "Service", "User") == "postroom"
    assert one(unit, "Service", "Group") == "postroom"
    assert one(unit, "Service", "ExecStart") == f"{INSTALLED_BINARY} -c {CONFIG} {command}"
    assert "PYTHONUNBUFFERED=1" in values(unit, "Service", "Environment")
    assert one(unit, "Service", "Restart") == "on-failure"
    assert seconds(one(unit, "Service", "RestartSec")) > 0
    assert seconds(one(unit, "Service", "TimeoutStopSec")) >= 30
    assert one(unit, "Unit", "PartOf") == TARGET

    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "ReadWritePaths": DATA_DIR,
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "RestrictRealtime": "yes",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert one(unit, "Service", key) == value, f"{name}: {key}="
    assert not values(unit, "Service", "AmbientCapabilities"), "no capabilities are needed"


def test_the_ingest_service_has_a_runtime_directory_for_the_lmtp_socket_and_reloads():
    unit = read_unit(UNIT_DIR / "postroom-ingest.service")
    assert one(unit, "Service", "RuntimeDirectory") == "postroom"
    assert one(unit, "Service", "RuntimeDirectoryMode") == "0750"
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    # SIGTERM to the listener only: it stops its parser processes itself, after the last commit
    assert one(unit, "Service", "KillMode") == "mixed"


def test_stopping_ingest_waits_longer_than_the_listener_needs_to_finish():
    from smtpd_ingest.processor import IntakeProcessor

    parser_grace = IntakeProcessor.stop.__defaults__[0] + 5  # join, then terminate and join 5 s
    unit = read_unit(UNIT_DIR / "postroom-ingest.service")
    assert seconds(one(unit, "Service", "TimeoutStopSec")) > parser_grace


def test_the_target_starts_all_three_and_each_service_follows_it():
    target = read_unit(UNIT_DIR / TARGET)
    wanted = " ".join(values(target, "Unit", "Wants")).split()
    assert sorted(wanted) == sorted(SERVICES)
    assert one(target, "Install", "WantedBy") == "multi-user.target"
    for name in SERVICES:
        assert one(read_unit(UNIT_DIR / name), "Unit", "PartOf") == TARGET


@pytest.mark.parametrize("name", SERVICES)
def test_the_command_in_exec_start_exists(name):
    from postroom.cli import main

    command = one(read_unit(UNIT_DIR / name), "Service", "ExecStart").split()[-1]
    assert command in main.commands


@pytest.mark.parametrize("name", (*SERVICES, TARGET))
def test_every_directive_has_a_comment_saying_why(name):
    uncommented = [
        f"{name}:{d.line}: {d.key}=" for d in read_unit(UNIT_DIR / name) if not d.commented
    ]
    assert not uncommented, "directives without a comment line right above:\n" + "\n".join(
        uncommented
    )
