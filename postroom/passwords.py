"""The password rule: long enough and not on the shipped list of common passwords."""

from __future__ import annotations

import functools
import gzip
from importlib import resources

MIN_LENGTH = 10
COMMON_LIST = "data/common-passwords.txt.gz"  # Django's list, see postroom/data/README.md

TOO_SHORT = "a password needs at least {n} characters"
TOO_COMMON = (
    "this password is on a list of common passwords that attackers try first; choose another"
)


@functools.cache
def common_passwords() -> frozenset[str]:
    """Load the shipped list of common passwords (lower-cased) once."""
    data = resources.files("postroom").joinpath(COMMON_LIST).read_bytes()
    return frozenset(line.strip() for line in gzip.decompress(data).decode().splitlines())


def password_problem(password: str) -> str | None:
    """Say why a new password is refused, or None when it may be used."""
    if len(password) < MIN_LENGTH:
        return TOO_SHORT.format(n=MIN_LENGTH)
    if password.strip().lower() in common_passwords():
        return TOO_COMMON
    return None
