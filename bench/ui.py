"""Protocol page and search at scale: 100,000 entries in one project (SQLite or PostgreSQL).

Usage: .venv/bin/python bench/ui.py [--entries 100000] [--url sqlite:////tmp/x.db | postgresql://…]
Prints p50/p95 per request kind and the ratio to /healthz measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

WORDS = [
    "website",
    "homepage",
    "opening",
    "hours",
    "gallery",
    "photo",
    "logo",
    "invoice",
    "contact",
    "form",
    "imprint",
    "privacy",
    "update",
    "change",
    "request",
    "please",
    "thanks",
    "meeting",
    "call",
    "offer",
    "draft",
    "review",
    "live",
    "domain",
    "hosting",
    "mail",
    "newsletter",
    "menu",
    "price",
    "team",
    "about",
    "shop",
    "product",
    "order",
    "delivery",
    "text",
    "image",
    "banner",
]
NAMES = ("anna", "paul", "jonas", "maria", "tom", "lena", "felix", "sara")


def build(entries: int, seed: int = 7) -> tuple[int, int]:
    """Create one account and project with `entries` synthetic entries; return their ids."""
    from domain.projects import create_project
    from domain.users import create_user
    from storage.accounts import create_account
    from storage.models import Entry, database
    from storage.search import index_entry

    rng = random.Random(seed)
    account = create_account("Bench agency")
    create_user(account.id, "bench@agency.test", "member", "bench password 1")
    project = create_project(
        account.id,
        "Bakery Miller",
        domain="bakery.example",
        customer_addresses=["anna@bakery.example"],
    )
    start = dt.datetime(2020, 1, 1)
    batch = []
    done = 0
    kinds = ("inbound", "inbound", "inbound", "outbound", "note", "call", "system")
    while done < entries:
        for _ in range(min(2000, entries - done)):
            sender = rng.choice(NAMES)
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 120)))
            batch.append(
                {
                    "account": account.id,
                    "project": project.id,
                    "kind": rng.choice(kinds),
                    "status": "open" if rng.random() < 0.1 else "done",
                    "subject": " ".join(rng.choice(WORDS) for _ in range(5)),
                    "from_address": f"{sender}@bakery.example",
                    "text": text,
                    "occurred_at": start + dt.timedelta(minutes=done * 25 + rng.randint(0, 20)),
                    "category": rng.choice(("customer", "internal", "external")),
                    "has_attachments": rng.random() < 0.05,
                }
            )
            done += 1
        with database.atomic():
            first = Entry.select(Entry.id).order_by(Entry.id.desc()).first()
            base = first.id if first else 0
            Entry.insert_many(batch).execute()
            for offset, row in enumerate(batch, start=1):
                index_entry(
                    base + offset,
                    subject=row["subject"],
                    body=row["text"],
                    addresses=row["from_address"],
                    attachments="",
                )
        batch = []
        if done % 20000 == 0 or done == entries:
            print(f"{done}/{entries} entries", flush=True)
    print()
    database.execute_sql("ANALYZE")
    return account.id, project.id


def logged_in_client(url: str, folder: Path):
    """A Flask test client of the admin UI on `url`, signed in as the bench member."""
    from admin_ui import create_app
    from postroom.config import load_settings

    config = folder / "postroom.toml"
    config.write_text(f'[storage]\nurl = "{url}"\n')
    client = create_app(load_settings(config), testing=True).test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post(
        "/login",
        data={"email": "bench@agency.test", "password": "bench password 1", "csrf_token": token},
    )
    return client


def timed(call, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--url", default="")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    from storage.db import migrate, open_database

    with tempfile.TemporaryDirectory(prefix="postroom-bench-ui-") as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'postroom.db'}"
        db = open_database(url)
        migrate(db)
        started = time.perf_counter()
        _, project_id = build(args.entries)
        print(f"built in {time.perf_counter() - started:.0f} s")
        client = logged_in_client(url, Path(tmp))
        base = f"/projects/{project_id}/protocol"

        def get(path: str):
            def call():
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)

            return call

        cases = {
            "healthz (baseline)": get("/healthz"),
            "protocol, first page": get(base),
            "protocol, is:open": get(base + "?status=open"),
            "protocol, word search": get(base + "?q=gallery+invoice"),
            "protocol, phrase": get(base + '?q="opening+hours"'),
            "protocol, from:": get(base + "?q=from:anna"),
            "protocol, date range": get(base + "?from_date=2021-01-01&to_date=2021-02-01"),
            "protocol, word + date": get(base + "?q=logo&from_date=2022-01-01&to_date=2022-06-01"),
            "tickets": get("/"),
        }
        baseline = None
        print(f"{'request':<28}{'p50 ms':>9}{'p95 ms':>9}{'p95/baseline':>14}")
        for name, call in cases.items():
            call()  # warm up
            times = sorted(timed(call, args.repeat))
            p50 = statistics.median(times)
            p95 = times[int(len(times) * 0.95) - 1]
            baseline = baseline or p95
            print(f"{name:<28}{p50:>9.1f}{p95:>9.1f}{p95 / baseline:>14.1f}")


if __name__ == "__main__":
    main()
