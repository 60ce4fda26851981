"""Which new entries start open (the seed: open entries are what Tickets lists and the team
acts on; the rest starts done and is kept in the protocol).

- customer mail (inbound) and messages from the customer (calls) start open;
- a note starts open only when its author ticks "needs action"; the box's default is the
  account's `open_notes` (off unless an owner changes it);
- auto-replies (Auto-Submitted, out-of-office and the like) start done (`open_auto_replies`);
- bounces start open (`open_bounces`): a mail that did not arrive needs someone;
- system entries (status changes, events other tools report) start done (`open_system`);
- mail to customers is done once written (our own action; open again if sending fails).

Spam is done whatever the settings. Each account may change the four defaults (Settings,
owners only); entries filed before keep their status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

from domain.errors import Forbidden
from storage.activity import log
from storage.db import write_transaction
from storage.filing import InboundRecord
from storage.models import User
from storage.open_defaults import open_settings_of, save_open_settings

OWNERS_ONLY = "only an owner may change which entries start open"


@dataclass(frozen=True)
class OpenDefaults:
    """An account's settings; the defaults are those of a new account."""

    notes: bool = False
    auto_replies: bool = False
    system: bool = False
    bounces: bool = True


def defaults_of_accounts(account_ids: Sequence[int]) -> dict[int, OpenDefaults]:
    """The settings of each account (an unknown one: the defaults), read in one query."""
    stored = open_settings_of(account_ids)
    return {
        account_id: OpenDefaults(**_named(stored[account_id]))
        if account_id in stored
        else OpenDefaults()
        for account_id in account_ids
    }


def defaults_of(account_id: int) -> OpenDefaults:
    return defaults_of_accounts([account_id])[account_id]


def _named(columns: dict[str, bool]) -> dict[str, bool]:
    return {name.removeprefix("open_"): value for name, value in columns.items()}


def inbound_starts_open(defaults: OpenDefaults, *, auto_submitted: bool, is_bounce: bool) -> bool:
    """Whether a mail from outside starts open: a bounce by `bounces` (it is auto-submitted
    too), another automatic reply by `auto_replies`, all other mail does."""
    if is_bounce:
        return defaults.bounces
    if auto_submitted:
        return defaults.auto_replies
    return True


def manual_starts_open(defaults: OpenDefaults, kind: str, needs_action: bool | None) -> bool:
    """Whether an entry written by hand starts open: a call does; a note when its author ticked
    "needs action" (None: not asked, the account's default for the box)."""
    if kind != "note":
        return True
    return defaults.notes if needs_action is None else needs_action


def settle_inbound(records: list[InboundRecord], account_ids: Sequence[int]) -> list[InboundRecord]:
    """The records of a batch, those that start done marked so (`done`); account_ids[i] is the
    account of records[i]. Spam and records already done are left as they are."""
    defaults = defaults_of_accounts(sorted(set(account_ids)))
    return [
        record
        if record.spam
        or record.done
        or inbound_starts_open(
            defaults[account_id],
            auto_submitted=record.auto_submitted,
            is_bounce=record.is_bounce,
        )
        else replace(record, done=True)
        for record, account_id in zip(records, account_ids, strict=True)
    ]


def set_defaults(user: User, defaults: OpenDefaults) -> OpenDefaults:
    """Store the account's settings (owners only), with one activity record naming them."""
    if user.role != "owner":
        raise Forbidden(OWNERS_ONLY)
    values = {f"open_{f.name}": getattr(defaults, f.name) for f in fields(OpenDefaults)}
    with write_transaction():
        save_open_settings(user.account_id, values)
        shown = ", ".join(f"{name}={'open' if on else 'done'}" for name, on in values.items())
        words = {
            name.removeprefix("open_"): "open" if on else "done" for name, on in values.items()
        }
        log(user.account_id, "open_defaults_changed", user=user.id, detail=shown, params=words)
    return defaults
