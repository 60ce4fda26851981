"""Search, protocol and Tickets pages at 1,000,000 entries across 200 projects.

Usage:
    .venv/bin/python bench/search.py [--entries 1000000] [--db /tmp/search.db]
    .venv/bin/python bench/search.py --url postgresql://postgres@127.0.0.1:5432/bench_search

Builds a deterministic synthetic corpus of mail-like text (customer mail, replies, notes,
calls, system entries; 200 projects of very different sizes, some unassigned mail) through
the storage models in bulk (insert_many and search.index_entries), unless the database holds
it already (`--db PATH` keeps a SQLite file between runs; on PostgreSQL a built database is
reused). Then fetches pages through the Flask test client as a logged-in member and prints
p50/p95 per case and the p95's ratio to /healthz measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui import logged_in_client, timed

PROJECTS = 200
TEAM = ("anna", "paul", "jonas", "maria", "tom")
FIRST_NAMES = (
    "peter",
    "sabine",
    "thomas",
    "claudia",
    "michael",
    "andrea",
    "stefan",
    "nicole",
    "martin",
    "julia",
    "frank",
    "katrin",
    "markus",
    "susanne",
    "oliver",
    "petra",
    "christian",
    "birgit",
    "daniel",
    "monika",
    "alexander",
    "karin",
    "jan",
    "ute",
    "tobias",
    "heike",
    "sven",
    "silke",
    "florian",
    "eva",
    "lukas",
    "lisa",
    "david",
    "laura",
    "simon",
    "nina",
    "jens",
    "carla",
)
TRADES = (
    "bakery",
    "butcher",
    "dental",
    "florist",
    "garage",
    "hotel",
    "joinery",
    "kindergarten",
    "law",
    "optician",
    "pharmacy",
    "physio",
    "plumber",
    "roofing",
    "salon",
    "school",
    "surgery",
    "tailor",
    "tax",
    "vineyard",
    "yoga",
    "zoo",
    "bistro",
    "cafe",
)
TOWNS = (
    "berlin",
    "hamburg",
    "munich",
    "cologne",
    "bremen",
    "dresden",
    "leipzig",
    "hanover",
    "essen",
    "bonn",
    "kiel",
    "mainz",
    "ulm",
    "trier",
    "passau",
    "rostock",
)
SUBJECTS = (
    "Question about the {page} page",
    "New photos for the {page} page",
    "Re: {page} text",
    "Change request: {thing}",
    "Invoice {number}",
    "Our opening hours",
    "Domain and hosting",
    "Logo draft {number}",
    "Re: Re: {thing}",
    "Newsletter in {month}",
    "Meeting on {day}",
    "Price list {year}",
    "Fwd: {thing}",
    "Offer for the {page} page",
    "Contact form broken?",
    "Privacy policy and imprint",
    "Shop: new products",
    "Go-live date",
    "Call back please",
    "Holiday closing {month}",
    "Menu for {month}",
    "Team photo",
    "Typo on the {page} page",
)
PAGES = (
    "home",
    "about",
    "team",
    "contact",
    "gallery",
    "shop",
    "menu",
    "prices",
    "services",
    "jobs",
    "news",
    "imprint",
)
THINGS = (
    "the header image",
    "the opening hours",
    "our new logo",
    "the contact form",
    "the menu",
    "the price list",
    "the team photos",
    "the newsletter",
    "the gallery",
    "the job offer",
    "the map on the contact page",
    "the cookie banner",
    "the online booking",
    "the footer",
)
MONTHS = "january february march april may june july august september october november december"
SENTENCES = (
    "Could you please change {thing} on the {page} page?",
    "We would like to update {thing} before {day}.",
    "Attached you will find the new photos for the {page} page.",
    "The invoice {number} has been paid by bank transfer today.",
    "Our opening hours change from {month}: Monday to Friday 8 to 18, Saturday 9 to 13.",
    "Is it possible to add a second language to the website?",
    "Thanks a lot for the quick help, the page looks great now.",
    "Please call me back tomorrow morning, I am in the shop until noon.",
    "The contact form does not send any mail since {day}, can you check it?",
    "We have a new colleague, please add her to the team page with a photo.",
    "The logo draft {number} is fine, but the colour should be a bit darker.",
    "When will the website go live? We planned the opening for {month}.",
    "Can you send me the offer for the newsletter and the online shop again?",
    "The domain transfer from the old hosting provider is confirmed.",
    "Please remove the old price list, the new one is valid from {month}.",
    "I cannot log in to the editor any more, the password reset mail never arrives.",
    "Our customers ask whether we deliver on {day}; please put a note on the home page.",
    "The privacy policy has to mention the new booking tool and the map.",
    "We are closed for holidays in {month}, please show a banner on every page.",
    "Please replace the header image with the photo of the shop front.",
    "The text on the {page} page still has a typo in the second paragraph.",
    "Here are the menu items for {month}, prices stay the same as last year.",
    "Would it be possible to meet on {day} to talk about the redesign?",
    "Thank you for the review, we will send the final texts by {day}.",
    "Our tax adviser needs a copy of invoice {number} with the correct address.",
    "The gallery loads very slowly on mobile phones, is there anything we can do?",
    "Please add the new product {number} to the shop with the attached description.",
    "Kind regards from {town}, and thanks again for the great work.",
    "We spoke on the phone about {thing}; here is the summary of what we agreed.",
    "The customer called: the shop is open on Sunday {day} for the town festival.",
)
NOTES = (
    "Called {name}, wants {thing} changed by {day}. Estimate two hours.",
    "Draft sent for review, waiting for feedback on {thing}.",
    "Invoice {number} sent, due in 14 days.",
    "@{team} can you take over the {page} page this week?",
    "Customer prefers calls in the afternoon. Do not send newsletters without approval.",
    "Hosting renewed until {year}; domain auth code stored in the vault.",
)
DAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
)
START = dt.datetime(2019, 1, 1)
SPAN = dt.timedelta(days=7 * 365)


def _fill(template: str, rng: random.Random, **extra: str) -> str:
    values = {
        "page": rng.choice(PAGES),
        "thing": rng.choice(THINGS),
        "number": str(rng.randint(1000, 99999)),
        "month": rng.choice(MONTHS.split()),
        "day": rng.choice(DAYS),
        "year": str(rng.randint(2019, 2027)),
        "town": rng.choice(TOWNS),
        "team": rng.choice(TEAM),
        "name": rng.choice(FIRST_NAMES),
    }
    values.update(extra)
    return template.format(**values)


def _body(rng: random.Random, greeting: str, signature: str) -> str:
    sentences = [_fill(rng.choice(SENTENCES), rng) for _ in range(rng.randint(2, 9))]
    text = f"{greeting}\n\n" + " ".join(sentences) + f"\n\nKind regards\n{signature}"
    if rng.random() < 0.4:  # a quoted earlier mail, as replies carry
        quoted = " ".join(_fill(rng.choice(SENTENCES), rng) for _ in range(rng.randint(2, 6)))
        text += "\n\n> " + quoted.replace(". ", ".\n> ")
    return text


def _projects(rng: random.Random):
    """200 (name, domain, customer first names) with sizes from a long-tailed distribution."""
    projects = []
    for number in range(PROJECTS):
        trade, town = rng.choice(TRADES), rng.choice(TOWNS)
        domain = f"{trade}-{town}-{number}.example"
        people = rng.sample(FIRST_NAMES, rng.randint(1, 4))
        projects.append((f"{trade.title()} {town.title()} {number}", domain, people))
    weights = [1 / (rank + 5) for rank in range(PROJECTS)]  # the largest ~4 %, the least ~0.1 %
    return projects, weights


def build(entries: int, seed: int = 2026) -> None:
    """Create one account, 200 projects and `entries` entries with participants and index rows."""
    from domain.projects import create_project
    from domain.tokens import create_api_token
    from domain.users import create_user
    from storage.accounts import create_account
    from storage.db import is_postgres
    from storage.models import Entry, Participant, User, database
    from storage.search import index_entries, remember_correspondents

    rng = random.Random(seed)
    account = create_account("Bench agency")
    member = create_user(account.id, "bench@agency.test", "member", "bench password 1")
    for name in TEAM:
        create_user(account.id, f"{name}@agency.test", "member", "bench password 1", name=name)
    create_api_token(User.get_by_id(member.id), "bench")
    specs, weights = _projects(rng)
    projects = []
    for name, domain, people in specs:
        addresses = [f"{person}@{domain}" for person in people]
        project = create_project(account.id, name, domain=domain, customer_addresses=addresses)
        projects.append((project, domain, people))
    kinds = ("inbound",) * 5 + ("outbound",) * 3 + ("note", "call", "system")
    step = SPAN / entries
    done = 0
    started = time.perf_counter()
    while done < entries:
        rows, extras = [], []
        for _ in range(min(2000, entries - done)):
            when = START + step * done + dt.timedelta(seconds=rng.randint(0, 3600))
            done += 1
            if rng.random() < 0.03:  # mail that matched no project
                sender = f"{rng.choice(FIRST_NAMES)}@{rng.choice(TRADES)}-mail.example"
                subject = _fill(rng.choice(SUBJECTS), rng)
                rows.append(
                    {
                        "account": account.id,
                        "project": None,
                        "kind": "inbound",
                        "status": "open",
                        "subject": subject,
                        "from_address": sender,
                        "from_name": "",
                        "text": _body(rng, "Hello,", sender.split("@")[0].title()),
                        "occurred_at": when,
                        "received_at": when,
                        "category": "external",
                        "spam": rng.random() < 0.2,
                        "route_reason": "no project",
                    }
                )
                extras.append(((("from", "", sender),), ""))
                continue
            project, domain, people = projects[rng.choices(range(PROJECTS), weights)[0]]
            kind = rng.choice(kinds)
            customer = f"{rng.choice(people)}@{domain}"
            member_name = rng.choice(TEAM)
            teammate = f"{member_name}@agency.test"
            if kind in ("inbound", "call"):
                sender, name, category = customer, customer.split("@")[0].title(), "customer"
            else:
                sender, name, category = teammate, member_name.title(), "internal"
            if kind == "note":
                subject, text = "", _fill(rng.choice(NOTES), rng)
            elif kind == "system":
                subject, text = f"Status changed to {rng.choice(('review', 'live'))}", ""
                sender = name = ""
            else:
                subject = _fill(rng.choice(SUBJECTS), rng)
                text = _body(rng, f"Hello {name if kind == 'outbound' else 'team'},", name)
            attachments = "photo.jpg" if rng.random() < 0.08 else ""
            rows.append(
                {
                    "account": account.id,
                    "project": project.id,
                    "kind": kind,
                    "status": "open" if rng.random() < 0.08 else "done",
                    "subject": subject,
                    "from_address": sender,
                    "from_name": name,
                    "text": text,
                    "occurred_at": when,
                    "received_at": when,
                    "category": category,
                    "project_status": project.status,
                    "has_attachments": bool(attachments),
                    "route_reason": "sender",
                }
            )
            people_of_entry = [("from", name, sender)] if sender else []
            if kind in ("inbound", "outbound"):
                people_of_entry.append(("to", "", teammate if kind == "inbound" else customer))
            extras.append((tuple(people_of_entry), attachments))
        with database.atomic():
            ids = [row[0] for row in Entry.insert_many(rows).returning(Entry.id).tuples()]
            Participant.insert_many(
                [
                    {"entry": entry_id, "role": role, "name": name, "address": address}
                    for entry_id, (people_of_entry, _) in zip(ids, extras, strict=True)
                    for role, name, address in people_of_entry
                ]
            ).execute()
            remember_correspondents(
                (account.id, address, name)
                for people_of_entry, _ in extras
                for _, name, address in people_of_entry
            )
            index_entries(
                (
                    entry_id,
                    row["subject"],
                    row["text"],
                    " ".join(p[2] for p in people_of_entry),
                    attachments,
                )
                for entry_id, row, (people_of_entry, attachments) in zip(
                    ids, rows, extras, strict=True
                )
            )
        if done % 50_000 == 0 or done == entries:
            rate = done / (time.perf_counter() - started)
            print(f"{done}/{entries} entries ({rate:.0f}/s)", flush=True)
    # as autovacuum leaves a database in use: statistics, and on PostgreSQL the visibility
    # map that index-only scans need (without it one search took 875 ms instead of 37 ms)
    database.execute_sql("VACUUM ANALYZE" if is_postgres() else "ANALYZE")


def percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[max(0, round(len(ordered) * share) - 1)]


def _cases(client, project_id: int, customer: str, others: tuple[str, str], token: str) -> dict:
    """Name → call; each call asserts the answer is 200."""

    def get(path: str, headers=None):
        def call():
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status_code)
            return response

        return call

    auth = {"Authorization": f"Bearer {token}"}
    base = f"/projects/{project_id}/protocol"
    first = get(base)().get_data(as_text=True)
    older = re.search(r'href="([^"]+before=\d+)" rel="next"', first).group(1).replace("&amp;", "&")
    searches = {
        "word": ("invoice", ""),
        "two words": ("gallery mobile", ""),
        "phrase": ('"opening hours"', ""),
        "from:": (f"from:{customer}", ""),
        "from: nobody matches": ("from:nobody", ""),
        # senders of other projects only: the project's page finds none of their mail
        "from: other, frequent": (f"from:{others[0]}", ""),
        "from: other, rare": (f"from:{others[1]}", ""),
        "date range": ("", "from_date=2023-03-01&to_date=2023-03-31"),
        "word + date": ("logo", "from_date=2022-01-01&to_date=2022-06-30"),
        "rare word": ("festival", ""),
    }
    cases = {"healthz (baseline)": get("/healthz")}
    from urllib.parse import quote

    for name, (words, dates) in searches.items():
        query = f"q={quote(words)}" + (f"&{dates}" if dates else "")
        cases[f"search {name}, project"] = get(f"{base}?{query}")
        api_words = words
        if dates:
            start, end = re.findall(r"\d{4}-\d\d-\d\d", dates)
            end = (dt.date.fromisoformat(end) + dt.timedelta(days=1)).isoformat()
            api_words = f"{words} after:{start} before:{end}".strip()
        cases[f"search {name}, all (API)"] = get(f"/api/v1/entries?q={quote(api_words)}", auth)
    cases["protocol, first page"] = get(base)
    cases["protocol, page 2 (keyset)"] = get(older)
    cases["tickets (/)"] = get("/")
    cases["unassigned"] = get("/unassigned")
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--url", default="", help="postgresql://… (default: SQLite)")
    parser.add_argument("--db", default="", help="SQLite file to build once and reuse")
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args()
    from storage.db import migrate, open_database
    from storage.models import ApiToken, Entry, Project, User

    with tempfile.TemporaryDirectory(prefix="postroom-bench-search-") as tmp:
        url = args.url or f"sqlite:///{args.db or Path(tmp) / 'postroom.db'}"
        db = open_database(url)
        migrate(db)
        if Entry.select().count() == 0:
            started = time.perf_counter()
            build(args.entries)
            print(f"built in {time.perf_counter() - started:.0f} s")
        else:
            print(f"reusing {Entry.select().count()} entries")
        from domain.tokens import create_api_token

        member = User.get(User.email == "bench@agency.test")
        ApiToken.delete().where(ApiToken.user == member.id).execute()
        token = create_api_token(member, "bench")
        # the first project is the largest (weights fall with rank): the longest protocol
        biggest = Project.select().order_by(Project.id).first()
        customer = biggest.customer_addresses.first().address.split("@")[0]
        by_size = list(Project.select().order_by(Project.id))  # the last is the smallest
        others = tuple(p.customer_addresses.first().address for p in (by_size[1], by_size[-1]))
        db.close()
        client = logged_in_client(url, Path(tmp))
        cases = _cases(client, biggest.id, customer, others, token)
        baseline = None
        print(f"{'request':<34}{'p50 ms':>9}{'p95 ms':>9}{'p95/healthz':>13}")
        for name, call in cases.items():
            if args.only and args.only not in name and baseline is not None:
                continue
            call()  # warm up
            times = timed(call, args.repeat)
            p50, p95 = statistics.median(times), percentile(times, 0.95)
            baseline = baseline or p95
            print(f"{name:<34}{p50:>9.1f}{p95:>9.1f}{p95 / baseline:>13.1f}", flush=True)


if __name__ == "__main__":
    main()
