"""A listener that cannot bind, told as the setting to change (issue 17).

The SMTP/LMTP listeners and the web server raise ListenError instead of the bare OSError, so
the command line can say which port, which setting and which file: "port 2525 is already in
use: set [ingest] smtp_listen in /etc/postroom/config.toml (or stop the other program)".
"""

from __future__ import annotations

import errno

from postroom.config import parse_listen

DEFAULT_SOURCE = "<defaults>"  # Settings.source when no config file was read


class ListenError(Exception):
    """Binding `listen`, the value of `setting` ("[ingest] smtp_listen"), failed."""

    def __init__(self, setting: str, listen: str, error: OSError) -> None:
        super().__init__(f"cannot listen on {listen} ({setting}): {error.strerror or error}")
        self.setting, self.listen, self.error = setting, listen, error

    def explain(self, source: str) -> str:
        """What to do about it, naming the config file the settings came from."""
        where = (
            "in a config file (postroom --config FILE, or POSTROOM_CONFIG)"
            if source == DEFAULT_SOURCE
            else f"in {source}"
        )
        target, port = parse_listen(self.listen)
        address = target if target.startswith("unix:") else f"port {port}"
        if self.error.errno == errno.EADDRINUSE:
            return (
                f"{address} is already in use: set {self.setting} {where} "
                "(or stop the other program)"
            )
        if self.error.errno == errno.EACCES:
            return (
                f"may not listen on {self.listen} (permission denied): set {self.setting} "
                f"{where} to a port above 1023, or give postroom the right to bind it"
            )
        if self.error.errno == errno.EADDRNOTAVAIL:
            return (
                f"cannot listen on {self.listen}: this machine has no such address; "
                f"set {self.setting} {where}"
            )
        reason = self.error.strerror or str(self.error)
        return f"cannot listen on {self.listen} ({reason}): check {self.setting} {where}"
