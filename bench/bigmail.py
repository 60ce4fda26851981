"""Big mail next to small mail: four concurrent 25 MB messages while small ones flow.

Usage: .venv/bin/python bench/bigmail.py [--size-mb 25]
Reports the ingest process's peak RSS growth (VmHWM) against the message size, and the
longest NOOP round trip on an idle session meanwhile (an upper bound of event-loop stalls).
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import random
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import free_port, start_postroom, wait_until_filed


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def family(pid: int) -> list[int]:
    """The process and all its descendants."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def build_big(size: int) -> bytes:
    """An attachment as mail carries it: base64 of random bytes (compresses to about 76 %)."""
    encoded = base64.encodebytes(random.Random(5).randbytes(size * 3 // 4)).replace(b"\n", b"\r\n")
    return (
        b"Subject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: application/octet-stream; name="big.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded
    )


def send_big(port: int, inbox: str, size: int, number: int, go) -> None:
    big = build_big(size)
    go.wait()
    with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
        client.sendmail("a@b.test", [inbox], big.replace(b"big", f"big {number}".encode(), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=25)
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    big = build_big(size)
    with tempfile.TemporaryDirectory(prefix="postroom-bigmail-") as tmp:
        folder = Path(tmp)
        config_ports = free_port(), free_port()
        process, inbox, config = start_postroom(folder, *config_ports, max_bytes=size + 1_000_000)
        smtp_port = config_ports[0]
        try:
            before = rss_kb(process.pid, "VmRSS")
            tree_start = sum(rss_kb(pid, "VmRSS") for pid in family(process.pid))
            stalls: list[float] = []
            done = threading.Event()

            def probe() -> None:
                with smtplib.SMTP("127.0.0.1", smtp_port) as client:
                    while not done.is_set():
                        started = time.perf_counter()
                        client.noop()
                        stalls.append((time.perf_counter() - started) * 1000)
                        time.sleep(0.005)

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
            # the big senders in processes of their own: smtplib's dot-stuffing of 25 MB holds
            # a GIL for a while, which must not count as a stall of the server
            spawned = multiprocessing.get_context("spawn")  # no fork beside running threads
            go = spawned.Event()
            bigs = [
                spawned.Process(target=send_big, args=(smtp_port, inbox, size, n, go))
                for n in range(4)
            ]
            for sender in bigs:
                sender.start()  # each builds its message, then waits for `go`
            prober.start()
            smalls.start()
            started = time.perf_counter()
            go.set()
            for sender in bigs:
                sender.join()
            elapsed = time.perf_counter() - started
            done.set()
            prober.join()
            smalls.join()
            peak = rss_kb(process.pid, "VmHWM")
            wait_until_filed(config)  # the parsers' peaks come while filing
            tree = sum(rss_kb(pid, "VmHWM") for pid in family(process.pid))
            tree_before = tree_start
        finally:
            process.terminate()
            process.wait()
    growth = (peak - before) * 1024
    size = len(big)
    print(f"4 x {size / 2**20:.1f} MB in {elapsed:.1f} s, {small_sent} small mails meanwhile")
    print(f"listener: peak RSS growth {growth / 1e6:.0f} MB = {growth / size:.2f} x message size")
    grown = (tree - tree_before) * 1024
    print(
        f"all ingest processes (listener, filing, parsers), sum of peaks over the start: "
        f"{grown / 1e6:.0f} MB = {grown / size:.2f} x message size"
    )
    p99 = sorted(stalls)[int(len(stalls) * 0.99)]
    print(f"longest NOOP round trip {max(stalls):.0f} ms (p99 {p99:.0f} ms, {len(stalls)} probes)")


if __name__ == "__main__":
    main()
