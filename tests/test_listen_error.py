"""A port already in use (issue 17): postroom names the port, the setting to change and the
config file, and exits non-zero without a traceback. Real processes, real sockets."""

from __future__ import annotations

import socket

import pytest

from tests.daemon import Daemon


@pytest.fixture
def busy_port():
    """A port of 127.0.0.1 where another program listens."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.mark.parametrize(
    ("command", "setting", "settings"),
    [
        ("ingest", "[ingest] smtp_listen", {"smtp_listen": "127.0.0.1:{port}"}),
        ("ingest", "[ingest] lmtp_listen", {"lmtp_listen": "127.0.0.1:{port}"}),
        ("web", "[web] listen", {}),
    ],
)
def test_a_port_in_use_names_the_port_and_the_setting(
    db_url, tmp_path, busy_port, command, setting, settings
):
    daemon = Daemon(tmp_path, db_url, **{k: v.format(port=busy_port) for k, v in settings.items()})
    if command == "web":
        daemon.web_listen = f"127.0.0.1:{busy_port}"
        daemon.write_config()
    daemon.cli("init")

    result = daemon.cli(command, check=False)

    assert result.returncode == 1, result
    expected = (
        f"port {busy_port} is already in use: set {setting} in {daemon.config} "
        "(or stop the other program)"
    )
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
