"""VERP envelope senders: the address a bounce of one outbound entry comes back to.

Mail that postroom relays itself (the [outbound] default route) goes out with the envelope
sender ``bounce+<entry id>.<token>@<first ingest domain>``; the token is an HMAC-SHA256 of
the entry id under a random key kept in the database (AppSetting ``bounce_key``, made on the
first send, shared by every process), cut to TOKEN_CHARS hex digits. Ingest accepts a
``bounce+`` recipient only when its token is right (smtpd_ingest/handler.py), so nobody can
make up the address of another entry: a forged one is refused at RCPT with 550.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading

from domain.tokens import shared_secret
from storage.bounces import outbound_target
from storage.models import AppSetting, database

BOUNCE_KEY = "bounce_key"
PREFIX = "bounce+"
TOKEN_CHARS = 20  # 80 bits of the HMAC
# bounce+<entry>.<token>: the local part, lower-cased (MTAs may change its case)
_LOCAL = re.compile(rf"^bounce\+(\d{{1,10}})\.([0-9a-f]{{{TOKEN_CHARS}}})$")

_keys: dict[str, bytes] = {}  # database -> its key; a key never changes once made
_keys_lock = threading.Lock()


def _key(*, create: bool) -> bytes | None:
    """The installation's bounce key; None if none was made yet and create is False."""
    here = str(database.database)
    with _keys_lock:
        found = _keys.get(here)
    if found is not None:
        return found
    if create:
        value = shared_secret(BOUNCE_KEY)
    else:
        row = AppSetting.get_or_none(AppSetting.key == BOUNCE_KEY)
        if row is None:
            return None  # no bounce address was ever given out
        value = row.value
    with _keys_lock:
        _keys[here] = value.encode()
    return _keys[here]


def _token(key: bytes, entry_id: int) -> str:
    digest = hmac.new(key, f"outbound-entry:{entry_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:TOKEN_CHARS]


def bounce_address(entry_id: int, domain: str) -> str:
    """The envelope sender for the outbound entry's mail (makes the key on first use)."""
    key = _key(create=True)
    assert key is not None
    return f"{PREFIX}{entry_id}.{_token(key, entry_id)}@{domain}"


def is_bounce_local_part(local: str) -> bool:
    return local.lower().startswith(PREFIX)


def entry_of_bounce_address(local: str) -> int | None:
    """The outbound entry id a bounce+ local part names, if its token is right, else None.

    The token is compared in constant time; a well-formed address costs the same whether
    or not its entry exists (existence is looked up only after the token matched).
    """
    match = _LOCAL.match(local.lower())
    if match is None:
        return None
    key = _key(create=False)
    if key is None:
        return None
    entry_id = int(match.group(1))
    if not hmac.compare_digest(_token(key, entry_id), match.group(2)):
        return None
    return entry_id


def bounce_target(local: str) -> tuple[int, int | None] | None:
    """(account id, project id) a bounce to this bounce+ local part is filed for: those of
    the outbound entry it names; None if the token is wrong or there is no such entry."""
    entry_id = entry_of_bounce_address(local)
    return outbound_target(entry_id) if entry_id is not None else None
