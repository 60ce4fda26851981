"""Search at scale takes other roads on SQLite (few matches, windows of rows): same answers."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from domain import projects as domain_projects
from storage import accounts, search
from storage.models import Entry
from storage.search import index_entries

WORDS = ("invoice", "logo", "gallery", "hours", "festival")


@pytest.fixture
def corpus(storage_db):
    """240 entries in two projects, a third filed out of time order (as an import does)."""
    rng = random.Random(5)
    account = accounts.create_account("Agency")
    bakery = domain_projects.create_project(account.id, "Bakery")
    florist = domain_projects.create_project(account.id, "Florist")
    start = dt.datetime(2026, 1, 1)
    rows = []
    for number in range(240):
        minutes = number * 60 if rng.random() < 0.66 else rng.randint(0, 240 * 60)
        words = " ".join(rng.sample(WORDS, rng.randint(0, 3)))
        rows.append(
            {
                "account": account.id,
                "project": rng.choice((bakery.id, florist.id)),
                "kind": "note",
                "text": f"entry {number} {words}",
                "occurred_at": start + dt.timedelta(minutes=minutes),
            }
        )
    ids = [row[0] for row in Entry.insert_many(rows).returning(Entry.id).tuples()]
    index_entries((i, "", row["text"], "", "") for i, row in zip(ids, rows, strict=True))
    return account, bakery


def _all_pages(account_id, text, project_id, limit=7):
    found, key = [], None
    while True:
        page = search.search(account_id, text, project_id=project_id, limit=limit, before_key=key)
        found += [entry.id for entry in page.entries]
        if page.next_key is None:
            return found
        key = page.next_key


def _expected(account_id, text, project_id):
    words = text.split()
    query = Entry.select().where(Entry.account == account_id)
    if project_id is not None:
        query = query.where(Entry.project == project_id)
    rows = query.order_by(Entry.occurred_at.desc(), Entry.id.desc())
    return [e.id for e in rows if all(w in e.text.split() for w in words)]


@pytest.mark.parametrize("few_matches", [0, 10_000], ids=["windows", "from-matches"])
@pytest.mark.parametrize("text", ["invoice", "festival logo", "hours gallery invoice", "nowhere"])
def test_every_road_pages_through_the_same_entries_in_the_same_order(
    corpus, monkeypatch, few_matches, text
):
    account, bakery = corpus
    monkeypatch.setattr(search, "FEW_MATCHES", few_matches)
    monkeypatch.setattr(search, "FIRST_WINDOW", 3)  # tiny windows: every road gets taken
    monkeypatch.setattr(search, "WINDOW_GROWTH", 2)
    for project_id in (bakery.id, None):
        assert _all_pages(account.id, text, project_id) == _expected(account.id, text, project_id)
