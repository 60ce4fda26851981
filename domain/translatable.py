"""N_: marks a literal as a message id for `pybabel extract` without translating it.

domain, storage, smtpd_ingest and postroom never import flask_babel: they keep an English
message id (marked with N_ so the catalog has it) or return a code, and admin_ui translates
it in the reader's language (admin_ui.i18n.translate). See admin_ui/i18n.py for the rules.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """message itself: the mark only tells the extractor it is a message id."""
    return message
