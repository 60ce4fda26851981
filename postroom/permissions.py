"""Role rules beyond "read-only may only read", each in one place for the UI and the API."""

from __future__ import annotations

from storage.models import User

MAY_DELETE_FOR_GOOD = ("owner", "admin")


def may_delete_entries(user: User) -> bool:
    """Whether a user may delete entries for good; members may only discard mail as spam."""
    return user.role in MAY_DELETE_FOR_GOOD
