"""An entry's category: whom it is with. The one rule, for mail filed live or reprocessed,
mail written in postroom, manual and system entries and mail assigned by hand.

- customer or partner: the other side is a customer address of the entry's project, of
  that kind (the sender of received mail, the recipient of mail written in postroom);
- internal: a note or a system entry, or received mail from a member of the team;
- customer: a call, SMS or talk entered by hand (with the customer, by definition);
- external: anyone else.
"""

from __future__ import annotations

CATEGORIES = ("customer", "partner", "internal", "external")


def category(kind: str, *, address_kind: str | None = None, team: bool = False) -> str:
    """The category of an entry of this kind (inbound, outbound, note, call, system).

    `address_kind` is the kind (customer, partner) of the other side's address among the
    project's customer addresses, None if it is none of them; `team` whether the sender of
    received mail is a member of the account's team.
    """
    if kind in ("note", "system"):
        return "internal"
    if kind == "call":
        return "customer"
    if address_kind:
        return address_kind
    if kind == "inbound" and team:
        return "internal"
    return "external"


ASSIGNED_AND_REMEMBERED = category("inbound", address_kind="customer")
"""The category of mail assigned by hand whose sender became a customer address then."""
