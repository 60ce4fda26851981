"""Login throttling that cannot be turned against users, and the trusted-proxy setting.

Over real HTTP (a `postroom web` process) where it matters: the client address comes from
X-Forwarded-For only when the peer is a trusted proxy, and parallel guesses need real
concurrency. The counting rules themselves are tested in-process with a pinned clock.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from admin_ui.proxies import TrustedProxies
from postroom import login_throttle as throttle
from postroom.config import ConfigError, load_settings
from storage.models import LoginAttempt, utcnow
from tests.daemon import Daemon
from tests.http_client import HttpClient
from tests.web import PASSWORD, csrf_token

FREE = throttle.ACCOUNT_FROM_ADDRESS.free  # 5 guesses per account and address
ADDRESS_FREE = throttle.ADDRESS.free  # 20 failures per address, whatever the emails
T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


class WebBehindProxy(Daemon):
    """`postroom web` with [web] trusted_proxies set."""

    def __init__(self, folder, db_url, trusted: list[str]):
        self.trusted = trusted
        super().__init__(folder, db_url, command="web")

    def write_config(self) -> None:
        super().write_config()  # [web] is the last table it writes
        with self.config.open("a") as handle:
            handle.write(f"trusted_proxies = {json.dumps(self.trusted)}\n")


@pytest.fixture
def proxied(db_url, tmp_path):
    """A web server that trusts 127.0.0.1 (the test is its proxy), with two users."""
    with WebBehindProxy(tmp_path, db_url, ["127.0.0.1", "10.0.0.0/8"]) as server:
        server.create_user("owner@agency.test", "owner")
        server.create_user("member@agency.test", "member")
        yield server


def client_at(server: Daemon, address: str) -> HttpClient:
    """A browser whose requests reach the server through the proxy from `address`."""
    return HttpClient(server.web_url, headers={"X-Forwarded-For": address})


def stored_failures(db_url: str, key: str) -> int:
    from storage.db import open_database

    db = open_database(db_url)
    try:
        row = LoginAttempt.get_or_none(LoginAttempt.key == key)
        return row.failures if row else 0
    finally:
        db.close()


# --- over HTTP, behind a trusted proxy -------------------------------------------------------
def test_failures_from_one_address_never_block_a_correct_login_from_another(proxied):
    attacker = client_at(proxied, "203.0.113.7")
    answers = [attacker.login("owner@agency.test", "wrong password!").status for _ in range(7)]
    assert answers == [401] * FREE + [429] * (7 - FREE)
    refused = attacker.login("owner@agency.test", PASSWORD)
    assert refused.status == 429  # the budget of this address for this account is spent
    wait = int(refused.headers["Retry-After"])
    assert 0 < wait <= 15 * 60
    assert "Too many failed attempts from your address. Try again in" in refused.text
    # the owner, elsewhere, is not locked out
    assert client_at(proxied, "198.51.100.20").login("owner@agency.test", PASSWORD).status == 302

    # made-up emails from the attacker's address spend its own budget, nobody else's
    answers = [
        attacker.login(f"nobody{n}@agency.test", "wrong password!").status
        for n in range(ADDRESS_FREE - FREE + 3)
    ]
    assert answers[: ADDRESS_FREE - FREE] == [401] * (ADDRESS_FREE - FREE)
    assert set(answers[ADDRESS_FREE - FREE :]) == {429}
    assert attacker.login("member@agency.test", PASSWORD).status == 429
    assert client_at(proxied, "198.51.100.21").login("member@agency.test", PASSWORD).status == 302
    # IPv6 behind the proxy too, and a proxy chain: the client is the right-most untrusted hop
    assert client_at(proxied, "2001:db8::1").login("member@agency.test", PASSWORD).status == 302
    chained = client_at(proxied, "203.0.113.7, 198.51.100.22, 10.1.2.3")
    assert chained.login("member@agency.test", PASSWORD).status == 302


def test_parallel_guesses_are_counted_exactly(proxied):
    guesses = 40
    address = "203.0.113.50"
    browsers = [client_at(proxied, address) for _ in range(guesses)]
    tokens = [browser.csrf_token() for browser in browsers]
    start = threading.Barrier(guesses)

    def guess(n: int) -> int:
        start.wait()
        return browsers[n].login("member@agency.test", f"wrong guess {n}", tokens[n]).status

    with ThreadPoolExecutor(guesses) as pool:
        answers = list(pool.map(guess, range(guesses)))
    assert answers.count(401) == FREE  # exactly the budget of passwords was checked
    assert answers.count(429) == guesses - FREE
    pair, by_address = (key for key, _free in throttle.login_keys("member@agency.test", address))
    assert stored_failures(proxied.db_url, pair) == FREE
    assert stored_failures(proxied.db_url, by_address) == FREE

    # made-up emails in parallel from another address: exactly the address's budget
    other = "203.0.113.51"
    browsers = [client_at(proxied, other) for _ in range(guesses)]
    tokens = [browser.csrf_token() for browser in browsers]
    start = threading.Barrier(guesses)

    def made_up(n: int) -> int:
        start.wait()
        return browsers[n].login(f"guess{n}@agency.test", "wrong guess", tokens[n]).status

    with ThreadPoolExecutor(guesses) as pool:
        answers = list(pool.map(made_up, range(guesses)))
    assert answers.count(401) == ADDRESS_FREE
    assert answers.count(429) == guesses - ADDRESS_FREE
    assert stored_failures(proxied.db_url, throttle.ADDRESS.prefix + other) == ADDRESS_FREE


def test_an_untrusted_peers_forwarded_for_is_ignored(db_url, tmp_path):
    with WebBehindProxy(tmp_path, db_url, ["192.0.2.0/24"]) as server:
        server.create_user("owner@agency.test", "owner")
        answers = [
            client_at(server, f"198.51.100.{n}").login("owner@agency.test", "wrong!!!!!!").status
            for n in range(FREE + 1)
        ]
        # every guess counted for the real peer, 127.0.0.1, whatever the header said
        assert answers == [401] * FREE + [429]
        elsewhere = client_at(server, "198.51.100.99").login("owner@agency.test", PASSWORD)
        assert elsewhere.status == 429
        pair = throttle.login_keys("owner@agency.test", "127.0.0.1")[0][0]
        assert stored_failures(db_url, pair) == FREE


# --- the API's wrong tokens -----------------------------------------------------------------
def test_wrong_api_tokens_are_throttled_per_address_and_a_good_token_still_works(web):
    from domain.tokens import create_api_token

    good = create_api_token(web.users["member"])
    client = web.app.test_client()
    bad = {"Authorization": "Bearer prt_not-a-token"}
    answers = [
        client.get("/api/v1/entries", headers=bad).status_code
        for _ in range(throttle.API_ADDRESS.free + 2)
    ]
    assert answers == [401] * throttle.API_ADDRESS.free + [429, 429]
    refused = client.get("/api/v1/entries", headers=bad)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["status"] == 429
    ok = client.get("/api/v1/entries", headers={"Authorization": f"Bearer {good}"})
    assert ok.status_code == 200
    elsewhere = client.get("/api/v1/entries", headers=bad, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert elsewhere.status_code == 401


def test_login_page_answers_429_with_retry_after_in_process(web):
    client = web.app.test_client()

    def attempt(password: str):
        form = {"email": "member@agency.test", "password": password}
        return client.post("/login", data={**form, "csrf_token": csrf_token(client)})

    assert [attempt("wrong password").status_code for _ in range(FREE)] == [401] * FREE
    response = attempt(PASSWORD)
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 15
    assert f"Try again in {wait} seconds" in response.get_data(as_text=True)


# --- the counting rules, with a pinned clock --------------------------------------------------
def test_budget_then_exponential_backoff_and_refusals_are_not_counted(storage_db):
    keys = throttle.login_keys("a@b.test", "203.0.113.1")
    for _ in range(FREE):
        assert throttle.reserve(keys, T0) == 0
    assert throttle.reserve(keys, T0) == 15
    assert throttle.reserve(keys, T0 + dt.timedelta(seconds=14)) == 1
    row = LoginAttempt.get(LoginAttempt.key == keys[0][0])
    assert row.failures == FREE  # refused attempts were not counted
    waits = []
    now = T0 + dt.timedelta(seconds=15)
    for _ in range(8):
        assert throttle.reserve(keys, now) == 0
        wait = throttle.reserve(keys, now)
        waits.append(wait)
        now += dt.timedelta(seconds=wait)
    assert waits == [30, 60, 120, 240, 480, 900, 900, 900]
    assert throttle.waiting(keys, now - dt.timedelta(seconds=1)) == 1
    assert throttle.waiting(keys, now) == 0


def test_a_quiet_key_starts_afresh_and_purge_forgets_it(storage_db):
    keys = throttle.login_keys("a@b.test", "203.0.113.1")
    for _ in range(FREE):
        throttle.reserve(keys, T0)
    later = T0 + dt.timedelta(seconds=15) + throttle.QUIET + dt.timedelta(seconds=1)
    for _ in range(FREE):
        assert throttle.reserve(keys, later) == 0
    assert throttle.reserve(keys, later) == 15
    assert throttle.purge(later + dt.timedelta(days=1)) == 2
    assert LoginAttempt.select().count() == 0


def test_a_guesser_who_waits_out_every_block_never_gets_a_fresh_budget(storage_db):
    """Two hours of a guesser who tries a second after each wait ends: after the budget, one
    guess per wait, the wait growing to LONGEST_WAIT and staying there."""
    keys = throttle.login_keys("a@b.test", "203.0.113.1")
    now, end, checked, waits = T0, T0 + dt.timedelta(hours=2), 0, []
    while now < end:
        wait = throttle.reserve(keys, now)
        if wait:
            waits.append(wait)
            now += dt.timedelta(seconds=wait + 1)  # Retry-After, and a second to answer
        else:
            checked += 1
    assert waits[:7] == [15, 30, 60, 120, 240, 480, 900]
    assert set(waits[6:]) == {900}  # the longest wait, again and again, no reset
    # 5 free, then one after each wait that ends within the two hours: the six growing ones
    # (945 s in all) and six of 900 s; 44 when a block's end reset the count
    assert checked == FREE + 6 + 6, checked


def test_a_block_that_just_ended_gives_one_try_not_a_fresh_budget(web):
    """Over HTTP: times set back through the storage layer as if a 15-minute block ended."""
    client = web.app.test_client()

    def attempt():
        form = {"email": "member@agency.test", "password": "wrong password"}
        return client.post("/login", data={**form, "csrf_token": csrf_token(client)}).status_code

    assert [attempt() for _ in range(FREE)] == [401] * FREE
    assert attempt() == 429
    now = utcnow()
    LoginAttempt.update(  # the last failure 16 minutes ago, its 15-minute block over a minute ago
        last_failure_at=now - dt.timedelta(minutes=16), blocked_until=now - dt.timedelta(minutes=1)
    ).execute()
    assert [attempt() for _ in range(3)] == [401, 429, 429]  # counted, and blocked again
    # only after 15 quiet minutes from the block's end does the key start afresh
    LoginAttempt.update(
        last_failure_at=now - dt.timedelta(minutes=40), blocked_until=now - dt.timedelta(minutes=16)
    ).execute()
    assert [attempt() for _ in range(FREE + 1)] == [401] * FREE + [429]


def test_a_success_clears_the_account_key_and_gives_the_address_one_attempt_back(storage_db):
    keys = throttle.login_keys("a@b.test", "203.0.113.1")
    for _ in range(FREE - 1):
        throttle.reserve(keys, T0)
    assert throttle.reserve(keys, T0) == 0  # the attempt that succeeds
    throttle.succeeded(keys)
    assert LoginAttempt.get_or_none(LoginAttempt.key == keys[0][0]) is None
    assert LoginAttempt.get(LoginAttempt.key == keys[1][0]).failures == FREE - 1
    assert throttle.reserve(keys, T0) == 0


def test_parallel_successes_and_failures_share_the_rows_without_deadlock(storage_db):
    """Reserving and taking back lock the same rows in one order (PostgreSQL would abort one
    of two transactions that wait for each other)."""
    emails = [f"user{n}@agency.test" for n in range(4)]
    start = threading.Barrier(8)
    errors = []

    def work(n: int) -> None:
        keys = throttle.login_keys(emails[n % 4], "203.0.113.1")
        start.wait()
        try:
            for _ in range(10):
                if throttle.reserve(keys) == 0 and n % 2:
                    throttle.succeeded(keys)
        except Exception as error:  # noqa: BLE001 - collected and shown below
            errors.append(error)
        finally:
            storage_db.close()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert errors == []
    address = LoginAttempt.get(LoginAttempt.key == throttle.login_keys("x", "203.0.113.1")[1][0])
    assert address.failures <= throttle.ADDRESS.free


def test_an_ipv6_client_counts_by_its_64_and_keys_ignore_case():
    assert throttle.client_network("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert throttle.client_network("::ffff:192.0.2.1") == "192.0.2.1"
    assert throttle.client_network("192.0.2.1") == "192.0.2.1"
    assert throttle.login_keys(" Owner@X.test ", "192.0.2.1") == throttle.login_keys(
        "owner@x.test", "192.0.2.1"
    )
    long_email = "x" * 10_000 + "@agency.test"
    assert all(len(key) <= 100 for key, _free in throttle.login_keys(long_email, "junk" * 99))


# --- the middleware ------------------------------------------------------------------------
def _seen(trusted: list[str], peer: str, **headers: str) -> dict:
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        return []

    environ = {"REMOTE_ADDR": peer, "wsgi.url_scheme": "http"}
    environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    TrustedProxies(app, trusted)(environ, None)
    return seen


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded_for", "client"),
    [
        ([], "127.0.0.1", "203.0.113.9", "127.0.0.1"),  # default: believe nobody
        (["127.0.0.1"], "192.0.2.5", "203.0.113.9", "192.0.2.5"),  # peer not trusted
        (["127.0.0.1"], "127.0.0.1", "203.0.113.9", "203.0.113.9"),
        (["127.0.0.1"], "127.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # spoofed left
        (["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "6.6.6.6, 203.0.113.9, 10.2.3.4", "203.0.113.9"),
        (["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "10.9.9.9, 10.2.3.4", "10.9.9.9"),  # inside
        (["127.0.0.1"], "127.0.0.1", "", "127.0.0.1"),
        (["127.0.0.1"], "127.0.0.1", "unknown", "127.0.0.1"),
        (["127.0.0.1"], "127.0.0.1", "203.0.113.9:4711", "203.0.113.9"),
        (["127.0.0.1"], "127.0.0.1", '"[2001:db8::7]:443"', "2001:db8::7"),
        (["::1"], "::1", "2001:DB8::7", "2001:db8::7"),
        (["127.0.0.1"], "::ffff:127.0.0.1", "203.0.113.9", "203.0.113.9"),
        (["127.0.0.1"], "127.0.0.1", "1.1.1.1," * 5000 + "203.0.113.9", "203.0.113.9"),
    ],
)
def test_the_client_is_the_right_most_untrusted_hop(trusted, peer, forwarded_for, client):
    seen = _seen(trusted, peer, x_forwarded_for=forwarded_for)
    assert seen["REMOTE_ADDR"] == client
    assert "HTTP_X_FORWARDED_FOR" not in seen  # nothing after the middleware reads it again


def test_forwarded_proto_is_believed_only_from_a_trusted_proxy():
    assert _seen(["127.0.0.1"], "127.0.0.1", x_forwarded_proto="https")["wsgi.url_scheme"] == (
        "https"
    )
    assert _seen([], "127.0.0.1", x_forwarded_proto="https")["wsgi.url_scheme"] == "http"
    assert _seen(["127.0.0.1"], "127.0.0.1", x_forwarded_proto="gopher")["wsgi.url_scheme"] == (
        "http"
    )


def test_trusted_proxies_setting_is_checked(tmp_path):
    config = tmp_path / "postroom.toml"
    config.write_text('[web]\ntrusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"]\n')
    assert load_settings(config).web.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")
    config.write_text('[web]\ntrusted_proxies = ["proxy.example"]\n')
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_settings(config)


@pytest.mark.parametrize(
    ("seconds", "says"),
    [
        (1, "Try again in 1 second."),
        (2, "Try again in 2 seconds."),
        (119, "Try again in 119 seconds."),
        (120, "Try again in 2 minutes."),
        (121, "Try again in 3 minutes."),
        (900, "Try again in 15 minutes."),
    ],
)
def test_the_wait_is_told_in_a_whole_sentence_for_each_plural_form(seconds, says):
    from admin_ui.views.auth import too_many

    assert too_many(seconds) == f"Too many failed attempts from your address. {says}"
