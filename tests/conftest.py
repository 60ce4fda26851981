"""Shared fixtures: a database per test on each backend, and a real postroom daemon."""

from __future__ import annotations

import inspect
import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.daemon import Daemon

pytest_plugins = ["tests.web", "tests.browser"]

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS = REPO_ROOT.parent / "shared" / "corpus"
PG_URL = os.environ.get("POSTROOM_TEST_PG_URL", "")
IN_CI = os.environ.get("CI") == "true"


def _backends() -> list:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgresql),
    ]


def pytest_configure(config) -> None:
    if IN_CI and not PG_URL:
        raise pytest.UsageError("CI=true but POSTROOM_TEST_PG_URL is not set")


# The quick tier (`scripts/test -m "not slow"`) leaves out every test marked slow. A test is
# marked here when it runs on PostgreSQL (a database made and dropped for it: 1-3 s), or when
# it, or a fixture it uses (the whole closure, conftest's included), starts another process or
# a real server: a daemon (Daemon, the `daemon` fixture), the `postroom` command, a Postfix
# instance, Chromium, a venv or wheel build. Anything else that takes over about a second
# carries @pytest.mark.slow itself, or its module is named in SLOW_MODULES.
SLOW_FIXTURES = frozenset({"daemon", "browser", "page", "browser_context", "postfix", "pg_url"})
STARTS_A_PROCESS = ("Daemon(", ".sibling(", "subprocess.", "Popen(", "PostfixInstance(")
SLOW_MODULES = frozenset(
    {
        "test_api_schema",  # schemathesis fuzzes the whole API: 36 s
        "test_bench_ingest",  # runs bench/ingest.py against a daemon
        "test_hostile_html",  # linear-time checks: measured runs of growing inputs
        "test_login_throttle",  # a web server behind a proxy; waits of the throttle
        "test_outbound_isolation",  # slow and silent SMTP servers, session deadlines
        "test_parse_properties",  # hypothesis mutates corpus mails: 10 s
        "test_search_scale",  # builds a large table
        "test_smtp_deadline",  # connect and session timeouts run out
        "test_ui_corpus",  # files and opens all 656 corpus mails
    }
)
# module::test (every parameter) measured at about 1 s or more in the quick tier (--durations)
SLOW_TESTS = frozenset(
    {
        "test_parse_regressions::test_hostile_headers_in_every_part_cost_time_linear_in_the_parts",
        "test_parse_regressions::test_address_headers_the_registry_finds_hard_cost_linear_time",
        "test_parse_regressions::test_a_subject_of_alternating_unknown_charsets_costs_linear_time_and_little",
        "test_parse_regressions::test_nesting_deeper_than_the_limit_is_not_split_and_costs_no_time_per_level",
        "test_api_document::test_the_served_document_is_the_spec_flask_smorest_generated",
        "test_bounded_filing::test_a_mail_nested_sixty_thousand_levels_opens_in_under_a_second",
        "test_bounded_filing::test_a_message_that_kills_filing_is_counted_and_quarantined_and_holds_up_no_other",
        "test_bounded_filing::test_a_worker_parse_is_bounded_by_processor_time_not_by_waiting_for_the_cpu",
        "test_bounded_filing::test_an_inline_parse_past_its_time_is_stopped_and_done_again_in_a_worker",
        "test_bounded_filing::test_entries_filed_before_sanitising_at_filing_still_show_within_bounds",
        "test_bounded_filing::test_small_mail_parsed_in_the_filing_process_takes_under_a_second_however_hostile",
        "test_credentials::test_a_password_change_ends_other_sessions_and_tokens_but_keeps_this_one",
        "test_credentials::test_a_refused_password_change_ends_nothing",
        "test_credentials::test_a_role_change_from_a_stale_copy_does_not_undo_an_ended_session",
        "test_credentials::test_a_session_ends_after_the_absolute_lifetime_however_active",
        "test_credentials::test_deactivation_then_reactivation_does_not_revive_old_sessions",
        "test_credentials::test_guessing_the_current_password_is_throttled_like_a_login",
        "test_credentials::test_nobody_revokes_a_token_of_another_user_from_their_profile",
        "test_credentials::test_other_users_keep_their_sessions_and_tokens",
        "test_credentials::test_owners_and_admins_revoke_tokens_of_their_team_on_the_team_page",
        "test_credentials::test_sign_out_everywhere_else_keeps_this_session_and_the_tokens",
        "test_domain::test_every_state_changing_command_goes_through_domain",
        "test_domain::test_every_state_changing_ui_route_goes_through_domain",
        "test_domain_users::test_a_new_password_or_deactivation_ends_every_session_and_token",
        "test_notifications::test_auto_submitted_mail_and_bounces_are_shown_in_the_app_and_never_emailed",
        "test_notifications::test_followers_hear_of_customer_mail_as_each_chose_at_once_or_in_one_digest",
        "test_notifications::test_the_bell_counts_unread_notifications_and_reading_them_clears_it",
        "test_notifications::test_the_profile_shows_the_defaults_saves_choices_and_lists_followed_projects",
        "test_packaging::test_postgresql_url_without_the_driver_names_the_extra",
        "test_parse::test_every_corpus_mail_parses_or_is_refused_with_a_reason",
        "test_parse::test_no_corpus_parse_leaks_a_surrogate_into_any_text",
        "test_redirects::test_every_next_after_login_stays_on_this_site_and_none_fails",
        "test_redirects::test_the_issues_sample_is_refused_over_a_raw_query_string",
        "test_review_users_forms::test_a_text_field_sent_as_a_file_is_read_as_not_sent",
        "test_route_explained::test_no_product_file_reads_route_reason",
        "test_route_explained::test_the_entry_page_and_the_api_show_the_same_words_for_every_rule",
        "test_route_explained::test_the_unassigned_list_says_why_without_the_heading_every_entry_there_has",
        "test_smtp_session::test_an_idle_session_is_closed_after_the_timeout_which_each_command_moves_on",
        "test_smtp_settings::test_no_word_a_foreign_server_says_reaches_the_ui_or_the_api",
        "test_ui_entries::test_a_call_is_stored_at_the_time_it_happened_in_utc",
        "test_ui_entries::test_a_note_is_added_with_its_author_and_the_project_status",
        "test_ui_entries::test_the_way_the_mail_came_is_read_from_its_received_headers",
        "test_ui_inline_images::test_one_image_named_many_times_is_looked_up_once_and_placed_within_the_cap",
        "test_ui_messages::test_received_mail_offers_an_answer_that_is_threaded_with_it",
        "test_ui_messages::test_settings_store_the_own_server_and_never_show_its_password",
        "test_ui_protocol::test_older_pages_walk_120_entries_exactly_once",
        "test_ui_protocol::test_search_dates_and_filters_narrow_the_protocol",
        "test_ui_team::test_a_deactivated_member_is_logged_out_at_once",
        "test_ui_team::test_an_admin_adds_a_member_who_can_then_log_in",
        "test_ui_team::test_an_admin_changes_roles_and_deactivates_and_reactivates_members",
        "test_ui_team::test_everyone_sees_the_team_with_roles_and_last_login",
        "test_ui_unassigned::test_assign_and_remember_sender_files_the_next_mail_on_its_own",
        "test_ui_unassigned::test_members_may_discard_but_not_delete_for_good",
        "test_upgrades::test_a_database_newer_than_this_postroom_is_refused_at_start",
        "test_upgrades::test_migrate_from_the_first_schema_keeps_every_entry",
        "test_web_auth::test_repeated_failures_are_refused_from_that_address_only",
        "test_worker::test_a_failing_job_is_logged_and_retried_and_the_worker_lives_on",
        "test_worker::test_two_workers_run_each_slot_once_and_one_takes_over_when_the_other_is_killed",
    }
)


def _starts_a_process(function) -> bool:
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    return any(call in source for call in STARTS_A_PROCESS)


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if item.get_closest_marker("slow"):
            continue
        fixtures = getattr(item, "_fixtureinfo", None)
        definitions = fixtures.name2fixturedefs.values() if fixtures else ()
        if (
            item.get_closest_marker("postgresql")
            or SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ()))
            or item.module.__name__.rpartition(".")[2] in SLOW_MODULES
            or f"{item.module.__name__.rpartition('.')[2]}::{item.originalname}" in SLOW_TESTS
            or _starts_a_process(getattr(item, "function", None))
            or any(_starts_a_process(d.func) for defs in definitions for d in defs)
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def _hash_each_password_once():
    """scrypt takes 0.1-0.5 s a call, and most tests create their team with the same password.

    Each password is hashed for real once (salted once) and that hash reused; every login
    still checks the password against it with scrypt."""
    from domain import users as auth  # where new passwords are hashed

    real = auth.generate_password_hash
    hashes: dict[tuple[str, str], str] = {}

    def once(password: str, method: str = "scrypt", salt_length: int = 16) -> str:
        if (password, method) not in hashes:
            hashes[password, method] = real(password, method=method, salt_length=salt_length)
        return hashes[password, method]

    auth.generate_password_hash = once
    yield
    auth.generate_password_hash = real


@pytest.fixture(params=_backends())
def db_url(request, tmp_path) -> str:
    """A fresh, empty database URL on each backend (PostgreSQL: a database of its own).

    For a test that uses `storage_db` the database is a copy of one migrated once per
    session (SQLite: its files; PostgreSQL: CREATE DATABASE … TEMPLATE), which storage_db's
    migrate() finds up to date: migrating each test's database took 0.4 s (SQLite) and
    1.6 s (PostgreSQL) on the 2-core machine."""
    migrated = "storage_db" in request.fixturenames
    if request.param == "sqlite":
        data = tmp_path / "data"
        if migrated:
            shutil.copytree(request.getfixturevalue("_sqlite_template"), data)
        yield f"sqlite:///{data / 'postroom.db'}"
        return
    template = request.getfixturevalue("_postgres_template") if migrated else None
    yield from _postgres_database(template)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """A data folder with a migrated SQLite database, made once per test process."""
    from storage.db import migrate, open_database

    data = tmp_path_factory.mktemp("migrated") / "data"
    db = open_database(f"sqlite:///{data / 'postroom.db'}", busy_timeout_ms=2000)
    migrate(db)
    db.close()
    return data


@pytest.fixture(scope="session")
def _postgres_template():
    """A migrated PostgreSQL database to copy, made once per test process, dropped at its end."""
    from storage.db import migrate, open_database

    for url in _postgres_database():
        db = open_database(url)
        migrate(db)
        db.close()
        yield url.rpartition("/")[2]


def _postgres_database(template: str | None = None):
    """Create a PostgreSQL database (empty, or a copy of `template`) for one test and drop it
    afterwards."""
    if not PG_URL:
        reason = "PostgreSQL tests need POSTROOM_TEST_PG_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    import psycopg2

    name = f"postroom_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(
            f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        )
    base, _, _ = PG_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database URL (for what only PostgreSQL does: scale-out)."""
    yield from _postgres_database()


@pytest.fixture
def storage_db(db_url):
    """The storage layer bound to a migrated database."""
    from storage.db import migrate, open_database

    db = open_database(db_url, busy_timeout_ms=2000)
    migrate(db)
    yield db
    db.close()


@pytest.fixture
def daemon(db_url, tmp_path):
    """A running `postroom ingest` with one account, over real sockets."""
    with Daemon(tmp_path, db_url) as running:
        yield running


@pytest.fixture
def bakery(web):
    """The project most tests work on: "Bakery Miller" (bakery.example, in progress, contact
    Anna Miller) with one customer address, anna@bakery.example, in the `web` account."""
    from domain.projects import create_project

    return create_project(
        web.account.id,
        "Bakery Miller",
        domain="bakery.example",
        status="in progress",
        contact_name="Anna Miller",
        customer_addresses=["anna@bakery.example"],
    )


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared mail corpus (the one place its path is named: CORPUS)."""
    if not CORPUS.is_dir():
        pytest.fail(f"mail corpus not found at {CORPUS} (shared/ must lie beside the repository)")
    return CORPUS


NOT_MAIL = ("README", "LICENSE", "NOTICE")  # licences and notes beside the mails


@pytest.fixture(scope="session")
def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every mail of the corpus, sorted (its README, LICENSE and NOTICE files left out)."""
    return sorted(
        path
        for path in corpus_dir.rglob("*")
        if path.is_file() and not path.name.upper().startswith(NOT_MAIL)
    )


@pytest.fixture(autouse=True)
def _umask_restored():
    """Each test ends with the umask it started with: `postroom`'s command group sets 077 for
    what it writes, and a test that runs it in process (CliRunner) would leave that to every
    later test of its worker (a private Postfix instance's queue then unreadable to Postfix)."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)
