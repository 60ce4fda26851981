"""Settings come from TOML once; mistakes stop start-up with file, key and reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from postroom.config import ConfigError, load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "postroom.toml"
    path.write_text(text)
    return path


def test_the_example_config_is_valid_and_equals_the_defaults(tmp_path):
    example = load_settings(REPO_ROOT / "config.example.toml")
    defaults = load_settings(write(tmp_path, ""))
    assert example.ingest == defaults.ingest
    assert example.web == defaults.web
    assert example.ui == defaults.ui
    assert defaults.ui.project_statuses == ("lead", "in progress", "review", "live", "archived")
    assert example.storage.url.endswith("/data/postroom.db")
    assert defaults.ingest.smtp_listen == "127.0.0.1:2525"
    assert defaults.ingest.lmtp_listen == "127.0.0.1:2424"
    assert defaults.ingest.max_message_bytes == 26214400
    assert defaults.ingest.max_recipients == 50
    assert defaults.ingest.token_grace_days == 14
    assert defaults.web.listen == "127.0.0.1:8080"


def test_relative_data_dir_is_taken_from_the_config_files_folder(tmp_path):
    settings = load_settings(write(tmp_path, '[storage]\ndata_dir = "var"\n'))
    assert settings.storage.url == f"sqlite:///{tmp_path / 'var' / 'postroom.db'}"


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[ingest]\nsmtp_port = 25\n", "ingest.smtp_port", "unknown key"),
        ("[mail]\n", "mail", "unknown section"),
        ('[ingest]\nmax_recipients = "many"\n', "ingest.max_recipients", "must be a number"),
        ("[ingest]\nmax_recipients = -1\n", "ingest.max_recipients", "negative"),
        ('[ingest]\nlmtp_listen = "2424"\n', "ingest.lmtp_listen", "host:port or unix:/path"),
        ('[ingest]\nlmtp_listen = "127.0.0.1:\u00b2"\n', "ingest.lmtp_listen", "host:port"),
        ('[ingest]\nlmtp_listen = "unix:relative.sock"\n', "ingest.lmtp_listen", "absolute"),
        ("[ingest]\ndomains = []\n", "ingest.domains", "at least one"),
        ("[ingest]\ntoken_grace_days = 0\n", "ingest.token_grace_days", "from 1 to 365"),
        ("[ingest]\ntoken_grace_days = 400\n", "ingest.token_grace_days", "from 1 to 365"),
        ('[storage]\nurl = "mysql://x"\n', "storage.url", "sqlite:/// or postgresql://"),
        ('[log]\nlevel = "loud"\n', "log.level", "one of"),
        ("[ui]\nproject_statuses = []\n", "ui.project_statuses", "at least one"),
        ('[ui]\nproject_statuses = ["lead", "live"]\n', "ui.project_statuses", "archived"),
        ('[ui]\nproject_statuses = ["a", "a", "archived"]\n', "ui.project_statuses", "twice"),
        ("[ui]\nproject_statuses = [1]\n", "ui.project_statuses", "list of strings"),
        ("[ingest\n", "-", "not valid TOML"),
    ],
)
def test_bad_settings_name_file_key_and_reason(tmp_path, text, key, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_check_config_prints_effective_settings_and_bad_config_is_one_line(tmp_path):
    good = write(tmp_path, '[ingest]\ndomains = ["In.Example"]\n')
    result = subprocess.run(
        [sys.executable, "-m", "postroom", "-c", str(good), "check-config"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert 'domains = ["in.example"]' in result.stdout
    assert 'smtp_listen = "127.0.0.1:2525"' in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[ingest]\nfoo = 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "postroom", "-c", str(bad), "ingest"],
        capture_output=True,
        text=True,
        env={"POSTROOM_CONFIG": "ignored.toml", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: configuration error: {bad}: ingest.foo: unknown key "
        "(known: smtp_listen, lmtp_listen, domains, hostname, max_message_bytes, max_recipients,"
        " max_smtp_connections, max_lmtp_connections, max_connections_per_address,"
        " data_timeout_seconds, session_timeout_seconds, parse_timeout_seconds, parse_workers,"
        " claim_timeout_seconds, token_grace_days)"
    ]


def test_postroom_config_environment_variable_names_the_file(tmp_path):
    path = write(tmp_path, '[ingest]\nsmtp_listen = ""\n')
    result = subprocess.run(
        [sys.executable, "-m", "postroom", "check-config"],
        capture_output=True,
        text=True,
        check=True,
        env={"POSTROOM_CONFIG": str(path), "PATH": "/usr/bin:/bin"},
    )
    assert f"# settings from {path}" in result.stdout
    assert 'smtp_listen = ""' in result.stdout
