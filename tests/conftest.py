"""Shared fixtures: a database per test on each backend, and a real postroom daemon."""

from __future__ import annotations

import os
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
    config.addinivalue_line("markers", "postgresql: runs against PostgreSQL")
    if IN_CI and not PG_URL:
        raise pytest.UsageError("CI=true but POSTROOM_TEST_PG_URL is not set")


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
    """A fresh, empty database URL on each backend (PostgreSQL: a database of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'postroom.db'}"
        return
    yield from _postgres_database()


def _postgres_database():
    """Create an empty PostgreSQL database for one test and drop it afterwards."""
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
        cursor.execute(f'CREATE DATABASE "{name}"')
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
