"""Big mail next to small mail: four concurrent 25 MB messages while small ones flow.

Usage: .venv/bin/python bench/bigmail.py [--size-mb 25]
Reports the ingest process's peak RSS growth (VmHWM) against the message size, and the
longest NOOP round trip on an idle session meanwhile (an upper bound of event-loop stalls).
"""

from __future__ import annotations

import argparse
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import free_port, start_postroom


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=25)
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    body = (b"x" * 76 + b"\r\n") * (size // 78)
    big = b"Subject: big\r\n\r\n" + body
    with tempfile.TemporaryDirectory(prefix="postroom-bigmail-") as tmp:
        folder = Path(tmp)
        config_ports = free_port(), free_port()
        process, inbox, _ = start_postroom(folder, *config_ports, max_bytes=size + 1_000_000)
        smtp_port = config_ports[0]
        try:
            before = rss_kb(process.pid, "VmRSS")
            stalls: list[float] = []
            done = threading.Event()

            def probe() -> None:
                with smtplib.SMTP("127.0.0.1", smtp_port) as client:
                    while not done.is_set():
                        started = time.perf_counter()
                        client.noop()
                        stalls.append((time.perf_counter() - started) * 1000)
                        time.sleep(0.005)

            def send_big(number: int) -> None:
                with smtplib.SMTP("127.0.0.1", smtp_port, timeout=300) as client:
                    client.sendmail(
                        "a@b.test", [inbox], big.replace(b"big", f"big {number}".encode(), 1)
                    )

            small_sent = 0

            def send_small() -> None:
                nonlocal small_sent
                with smtplib.SMTP("127.0.0.1", smtp_port) as client:
                    while not done.is_set():
                        client.sendmail(
                            "a@b.test",
                            [inbox],
                            f"Subject: small {small_sent}\r\n\r\nhi\r\n".encode(),
                        )
                        small_sent += 1

            prober = threading.Thread(target=probe)
            smalls = threading.Thread(target=send_small)
            bigs = [threading.Thread(target=send_big, args=(n,)) for n in range(4)]
            prober.start()
            smalls.start()
            started = time.perf_counter()
            for thread in bigs:
                thread.start()
            for thread in bigs:
                thread.join()
            elapsed = time.perf_counter() - started
            done.set()
            prober.join()
            smalls.join()
            peak = rss_kb(process.pid, "VmHWM")
        finally:
            process.terminate()
            process.wait()
    growth = (peak - before) * 1024
    print(f"4 x {args.size_mb} MB in {elapsed:.1f} s, {small_sent} small mails meanwhile")
    print(f"peak RSS growth {growth / 1e6:.0f} MB = {growth / size:.2f} x message size")
    p99 = sorted(stalls)[int(len(stalls) * 0.99)]
    print(f"longest NOOP round trip {max(stalls):.0f} ms (p99 {p99:.0f} ms, {len(stalls)} probes)")


if __name__ == "__main__":
    main()
