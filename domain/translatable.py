"""N_: marks a literal as a message id for `pybabel extract` without translating it.

domain, storage, smtpd_ingest and postroom never import flask_babel: they keep an English
message id (marked with N_ so the catalog has it) or return a code, and admin_ui translates
it in the reader's language (admin_ui.i18n.translate). See admin_ui/i18n.py for the rules.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """message itself: the mark only tells the extractor it is a message id."""
    return message


class Message(str):
    """An English sentence filled in from a message id and its values.

    It is the English text (str, ==, join all work as before); message_id (marked with N_,
    with %(name)s placeholders) and values let admin_ui say it in the reader's language:
    admin_ui.i18n.translate(message) or translate(message.message_id, **message.values).
    """

    message_id: str
    values: dict

    def __new__(cls, message_id: str, **values) -> Message:
        text = super().__new__(cls, message_id % values if values else message_id)
        text.message_id = message_id
        text.values = values
        return text
