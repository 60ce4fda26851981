"""An account's settings of which new entries start open (domain.open_rules says what each
means): read for a batch of accounts at once, and saved."""

from __future__ import annotations

from collections.abc import Iterable

from storage.models import Account

FIELDS = ("open_notes", "open_auto_replies", "open_system", "open_bounces")


def open_settings_of(account_ids: Iterable[int]) -> dict[int, dict[str, bool]]:
    """{account id: {field: value}} of the accounts that exist, in one query."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    columns = [getattr(Account, name) for name in FIELDS]
    rows = Account.select(Account.id, *columns).where(Account.id.in_(ids)).tuples()
    return {row[0]: dict(zip(FIELDS, map(bool, row[1:]), strict=True)) for row in rows}


def save_open_settings(account_id: int, values: dict[str, bool]) -> None:
    """Store the settings named in values (FIELDS only), in the caller's transaction."""
    changes = {getattr(Account, name): bool(values[name]) for name in FIELDS if name in values}
    if changes:
        Account.update(changes).where(Account.id == account_id).execute()
