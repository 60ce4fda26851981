"""Two checkouts of postroom on the ingest benchmark, in turn (ABBA), on a machine that drifts.

    .venv/bin/python bench/ingest_ab.py /path/to/old-checkout /path/to/new-checkout --rounds 3

Each round runs `bench/ingest.py --repeat 1` (one pair per protocol) of A, B, B, A; the
summary shows, per checkout and protocol, the median of the pairs' ratios with a bootstrap
90 % interval. Both checkouts run with this interpreter (its packages must suit both).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from ingest import report_spread

ROW = re.compile(r"^(SMTP|LMTP)\s+\d+\s+\d+\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--rounds", type=int, default=3, help="ABBA rounds: 2 pairs each")
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    ratios: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name in ("a", "b", "b", "a"):
            command = [
                sys.executable,
                "bench/ingest.py",
                "--messages",
                str(args.messages),
                "--sizes",
                "10240",
                "--sessions",
                "8",
                "--repeat",
                "1",
            ]
            out = subprocess.run(command, cwd=getattr(args, name), capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"{name}: bench/ingest.py failed:\n{out.stdout}{out.stderr}")
            for line in out.stdout.splitlines():
                if match := ROW.match(line):
                    ratios.setdefault((name, match[1]), []).append(float(match[4]))
                    print(f"{name} {line}", flush=True)
    for (name, protocol), values in sorted(ratios.items()):
        print(f"{name} {protocol}:")
        report_spread(values)


if __name__ == "__main__":
    main()
