"""Import speed: `postroom import` of a generated mbox (deterministic, realistic mail).

Usage: .venv/bin/python bench/import_mbox.py [--messages 100000] [--keep /tmp/bench.mbox]
Prints msg/s of the whole command (read, store raw, parse, route, file, index) and checks
that every message became an entry. The baseline in the same run is `cat` of the file
through Python's mailbox module (reading alone), so the ratio says how far from I/O-bound.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import mailbox
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from ui import WORDS  # noqa: E402 - the same vocabulary as the page benchmarks

PEOPLE = ["anna", "paul", "jonas", "maria", "tom", "lena", "felix", "sara", "noah", "emma"]
DOMAINS = [f"customer{i}.example" for i in range(40)]


def build_mbox(path: Path, messages: int, seed: int = 11) -> None:
    """Write `messages` mails: plain, HTML alternative, some with a small attachment, replies."""
    rng = random.Random(seed)
    with open(path, "wb") as out:
        for index in range(messages):
            sender = f"{rng.choice(PEOPLE)}@{rng.choice(DOMAINS)}"
            text = "\n".join(
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16)))
                for _ in range(rng.randint(5, 30))
            )
            date = email.utils.formatdate(1_600_000_000 + index * 600, localtime=False)
            head = (
                f"From: {sender.split('@')[0].title()} <{sender}>\n"
                f"To: Agency <team@agency.example>\nSubject: {' '.join(rng.sample(WORDS, 4))}\n"
                f"Date: {date}\nMessage-ID: <m{index}@{sender.split('@')[1]}>\n"
            )
            if index and rng.random() < 0.3:
                head += f"In-Reply-To: <m{rng.randrange(index)}@{rng.choice(DOMAINS)}>\n"
            head += "MIME-Version: 1.0\n"
            kind = rng.random()
            if kind < 0.6:
                body = f"Content-Type: text/plain; charset=utf-8\n\n{text}\n"
            else:
                html = "".join(f"<p>{line}</p>" for line in text.split("\n"))
                parts = [
                    f"--b1\nContent-Type: text/plain; charset=utf-8\n\n{text}\n",
                    "--b1\nContent-Type: text/html; charset=utf-8\n\n"
                    f"<html><body>{html}</body></html>\n",
                ]
                if kind > 0.9:
                    parts.append(
                        "--b1\nContent-Type: application/pdf\nContent-Disposition: attachment;"
                        ' filename="offer.pdf"\nContent-Transfer-Encoding: base64\n\n'
                        "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\n"
                    )
                body = (
                    'Content-Type: multipart/mixed; boundary="b1"\n\n' + "".join(parts) + "--b1--\n"
                )
            message = (head + body).replace("\nFrom ", "\n>From ")
            out.write(f"From {sender} Thu Jan  1 00:00:00 2026\n{message}\n".encode())


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, capture_output=True, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="reuse or keep the generated mbox here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="postroom-bench-import-") as tmp:
        folder = Path(tmp)
        mbox = args.keep or folder / "bench.mbox"
        if not mbox.exists():
            started = time.perf_counter()
            build_mbox(mbox, args.messages)
            print(f"built {mbox} in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        read = sum(1 for _ in mailbox.mbox(mbox, factory=None, create=False).itervalues())
        baseline = read / (time.perf_counter() - started)
        config = folder / "postroom.toml"
        config.write_text(
            f'[storage]\ndata_dir = "{folder / "data"}"\n[ingest]\ndomains = ["in.example"]\n'
        )
        base = [sys.executable, "-m", "postroom", "-c", str(config)]
        run([*base, "init"])
        account = json.loads(run([*base, "account", "create", "Bench", "--json"]).stdout)
        started = time.perf_counter()
        result = subprocess.run(
            [*base, "import", "--account", str(account["id"]), str(mbox)],
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(result.stderr[-3000:])
        sys.path.insert(0, str(REPO))
        from postroom.config import load_settings
        from storage.db import open_database
        from storage.models import Entry

        db = open_database(load_settings(config).storage.url)
        entries = Entry.select().count()
        db.close()
    print(result.stdout.strip())
    print(f"{'':<22}{'msg/s':>9}{'ratio':>8}")
    print(f"{'read the mbox only':<22}{baseline:>9.0f}{1:>8.2f}")
    print(f"{'postroom import':<22}{read / elapsed:>9.0f}{read / elapsed / baseline:>8.2f}")
    print(f"{read} messages, {entries} entries")
    if entries != read:
        sys.exit("MISSING ENTRIES")


if __name__ == "__main__":
    main()
