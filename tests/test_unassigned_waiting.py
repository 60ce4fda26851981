"""The Unassigned count means mail that waits: done mail (an archive imported --as-done,
mail ticked done without a project) stays listed on the page but is not counted (issue 17)."""

from __future__ import annotations

import re

from domain import entries as domain_entries
from storage.timeline import unassigned_count
from tests.mail import message
from tests.test_ui_unassigned import receive


def test_done_unassigned_mail_is_listed_but_not_counted(web):
    mails = [receive(web.account.id, message(f"Old {n}", sender="x@old.test")) for n in range(3)]
    waiting = receive(web.account.id, message("New question", sender="y@new.test"))
    for mail in mails:
        domain_entries.set_done(mail, None, True)  # as an import --as-done leaves them
    assert unassigned_count(web.account.id) == 1
    assert unassigned_count(web.account.id, waiting_only=False) == 4

    page = web.client("member").get("/unassigned").get_data(as_text=True)
    assert re.search(r'id="unassigned-count">1<', page)  # the navigation
    assert re.search(r'id="unassigned-waiting">1<', page)  # the page's heading
    assert "1 waiting. Mail already done" in page
    for mail in [*mails, waiting]:
        assert f'id="entry-{mail.id}"' in page  # every one still there to be assigned
    assert "Select all 4 matching" in page  # the bulk form takes what the list shows


def test_with_nothing_done_the_page_says_no_more_than_the_count(web):
    receive(web.account.id, message("New question", sender="y@new.test"))
    page = web.client("member").get("/unassigned").get_data(as_text=True)
    assert re.search(r'id="unassigned-count">1<', page)
    assert "waiting. Mail already done" not in page
    assert "Select all 1 matching" in page


def test_the_waiting_count_seeks_open_unassigned_rows_by_index(storage_db, monkeypatch):
    """Counted on every page (the navigation), the waiting count must not read every done row
    of an imported archive: it reads the index on (account, project, status), where unassigned
    open mail is one range, not the index of all unassigned mail filtered row by row."""
    from storage.db import is_sqlite

    executed: list[tuple[str, list]] = []
    original = storage_db.execute_sql

    def recording(sql, params=None, *args, **kwargs):
        executed.append((sql, list(params or [])))
        return original(sql, params, *args, **kwargs)

    monkeypatch.setattr(storage_db, "execute_sql", recording)
    unassigned_count(1)
    monkeypatch.undo()
    [(sql, params)] = executed
    if is_sqlite(storage_db):
        plan = str(storage_db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
        assert "entry_account_project_status" in plan and "status=?" in plan, plan
    else:  # PostgreSQL chooses by its statistics (with an archive: the status index)
        storage_db.execute_sql("SET enable_seqscan = off")
        plan = str(storage_db.execute_sql("EXPLAIN " + sql, params).fetchall())
        assert "Index" in plan, plan
