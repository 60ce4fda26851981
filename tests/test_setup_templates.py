"""The setup page gives the new account the starter templates of the language chosen on it, or
of the browser's language when none is chosen (issue 18)."""

from __future__ import annotations

import pytest

from storage.models import Account, MailTemplate
from tests.test_starter_templates import ENGLISH_NAMES, GERMAN_NAMES


def _set_up(tmp_path, headers: dict, **chosen) -> None:
    from admin_ui import create_app
    from domain.tokens import setup_token
    from postroom.config import load_settings
    from tests.web import csrf_token

    config = tmp_path / "postroom.toml"
    config.write_text("")
    client = create_app(load_settings(config), testing=True).test_client()
    path = f"/setup?token={setup_token()}"
    response = client.post(
        path,
        data={
            "agency": "Pixel",
            "email": "owner@pixel.test",
            "password": "long enough password",
            "csrf_token": csrf_token(client, path),
            **chosen,
        },
        headers=headers,
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("headers", "chosen", "language", "names"),
    [
        ({}, {"language": "de"}, "de", GERMAN_NAMES),
        ({"Accept-Language": "de-DE,de;q=0.9"}, {}, "de", GERMAN_NAMES),
        ({"Accept-Language": "de-DE"}, {"language": "en"}, "en", ENGLISH_NAMES),
        ({}, {}, "en", ENGLISH_NAMES),
    ],
)
def test_the_setup_page_gives_the_templates_of_the_accounts_language(
    storage_db, tmp_path, headers, chosen, language, names
):
    _set_up(tmp_path, headers, **chosen)
    [account] = Account.select()
    assert account.language == language
    assert {t.name for t in MailTemplate.select()} == names
