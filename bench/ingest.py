"""Ingest throughput: postroom (durable, parsed, routed, indexed) next to a no-op aiosmtpd server.

Usage: .venv/bin/python bench/ingest.py [--messages 3000] [--sessions 8,32]
                                        [--sizes 1024,10240,102400] [--protocols smtp,lmtp]

Both servers get the same load in the same run, in turn, --repeat times per case: Postfix's
smtp-source when installed, else the Python load generator below. One more client sends a
message at a time throughout and measures end-of-DATA -> reply latency (p50/p99). The figure
that matters is the ratio, since the machines are shared and noisy. "filed msg/s" counts until
the last message is parsed, routed and indexed. Afterwards every acknowledged message must be
in the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# After a run is filed, nothing postroom still does (a WAL checkpoint, a sweep) may overlap
# the next run, of either server.
SETTLE_SECONDS = 3.0
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_line(path: Path, text: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited:\n{path.read_text()}")
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    sys.exit(f"server did not start:\n{path.read_text()}")


def message_body(size: int, index: int = 0) -> bytes:
    head = (
        f"From: bench@sender.test\r\nTo: inbox@in.example\r\nSubject: bench {index}\r\n"
        f"Message-ID: <bench.{index}.{time.time_ns()}@sender.test>\r\n\r\n"
    ).encode()
    line = b"La de da de da, the quick brown fox jumps over the lazy dog 0123456789.\r\n"
    return head + line * max(1, (size - len(head)) // len(line))  # no line starts with "."


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of pid itself and of all its descendants together."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    family, found = {pid}, True
    while found:
        found = {child for child, parent in parents.items() if parent in family} - family
        family |= found
    return cpu.get(pid, 0.0), sum(cpu[member] for member in family - {pid})


def machine_cpu() -> tuple[float, float]:
    """(busy, steal) jiffies of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq, steal


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- load ----------------------------------------------------------------------------------


def smtp_source(port: int, messages: int, sessions: int, size: int, lmtp: bool, rcpt: str) -> None:
    command = [SMTP_SOURCE, "-s", str(sessions), "-l", str(size), "-m", str(messages)]
    command += ["-f", "bench@sender.test", "-t", rcpt, "-c"]
    if lmtp:
        command.append("-L")
    command.append(f"127.0.0.1:{port}")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"smtp-source failed: {result.stderr}")


async def _session(port: int, lmtp: bool, rcpt: str, size: int, queue: list, acked: list):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> bytes:
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("closed")
            if line[3:4] != b"-":
                return line

    await reply()
    writer.write(b"LHLO bench\r\n" if lmtp else b"EHLO bench\r\n")
    await reply()
    while queue:
        body = message_body(size, queue.pop())
        writer.write(f"MAIL FROM:<bench@sender.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        for _ in range(3):
            await reply()
        writer.write(body + b".\r\n")
        index = int(body.split(b"Subject: bench ", 1)[1].split(b"\r\n", 1)[0])
        if (await reply()).startswith(b"250"):
            acked.append(index)
    writer.write(b"QUIT\r\n")
    await reply()
    writer.close()


def python_load(port: int, messages: int, sessions: int, size: int, lmtp: bool, rcpt: str) -> int:
    """A load generator for machines without smtp-source: sessions deliver messages in turn."""
    return len(python_load_acknowledged(port, messages, sessions, size, lmtp, rcpt))


def python_load_acknowledged(
    port: int, messages: int, sessions: int, size: int, lmtp: bool, rcpt: str
) -> list[int]:
    """Deliver messages 0..messages-1 ("Subject: bench <n>"); return the numbers answered 250."""
    queue, acked = list(range(messages)), []

    async def run() -> None:
        await asyncio.gather(
            *(_session(port, lmtp, rcpt, size, queue, acked) for _ in range(sessions))
        )

    asyncio.run(run())
    return acked


class Probe(threading.Thread):
    """One more client: a message at a time, timing end-of-DATA -> final reply."""

    def __init__(self, port: int, lmtp: bool, rcpt: str, size: int) -> None:
        super().__init__(daemon=True)
        self.port, self.lmtp, self.rcpt, self.size = port, lmtp, rcpt, size
        self.latencies: list[float] = []
        self.acknowledged = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # ".\r\n" goes at once
            file = sock.makefile("rb")

            def reply() -> bytes:
                while True:
                    line = file.readline()
                    if line[3:4] != b"-":
                        return line

            reply()
            sock.sendall(b"LHLO probe\r\n" if self.lmtp else b"EHLO probe\r\n")
            reply()
            while not self.stop.is_set():
                sock.sendall(
                    f"MAIL FROM:<probe@sender.test>\r\nRCPT TO:<{self.rcpt}>\r\nDATA\r\n".encode()
                )
                for _ in range(3):
                    reply()
                sock.sendall(message_body(self.size, -len(self.latencies) - 1))
                started = time.perf_counter()
                sock.sendall(b".\r\n")
                answer = reply()
                self.latencies.append((time.perf_counter() - started) * 1000)
                self.acknowledged += answer.startswith(b"250")
                time.sleep(0.005)
            sock.sendall(b"QUIT\r\n")


def drive(port: int, args, sessions: int, size: int, lmtp: bool, rcpt: str) -> dict:
    """Send the load with a latency probe beside it; return msg/s, latencies, acknowledged."""
    probe = Probe(port, lmtp, rcpt, size)
    probe.start()
    load_cpu = children_cpu() if args.generator == "smtp-source" else time.process_time()
    machine = machine_cpu()
    started = time.perf_counter()
    if args.generator == "smtp-source":
        smtp_source(port, args.messages, sessions, size, lmtp, rcpt)
        acknowledged = args.messages  # smtp-source fails on any refusal
    else:
        acknowledged = python_load(port, args.messages, sessions, size, lmtp, rcpt)
    elapsed = time.perf_counter() - started
    busy, steal = (b - a for a, b in zip(machine, machine_cpu(), strict=True))
    cores = (os.cpu_count() or 1) * elapsed * os.sysconf("SC_CLK_TCK")
    now = children_cpu() if args.generator == "smtp-source" else time.process_time()
    load_cpu = now - load_cpu
    probe.stop.set()
    probe.join()
    latencies = sorted(probe.latencies)
    return {
        "rate": args.messages / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "acknowledged": acknowledged + probe.acknowledged,
        "started": started,
        "load_cpu_ms": load_cpu * 1000 / args.messages,
        "busy": busy / cores,
        "steal": steal / cores,
    }


# --- servers -------------------------------------------------------------------------------


def start_postroom(folder: Path, smtp_port: int, lmtp_port: int, max_bytes: int = 26214400):
    config = folder / "postroom.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{folder / "data"}"\n'
        f'[ingest]\nsmtp_listen = "127.0.0.1:{smtp_port}"\nlmtp_listen = "127.0.0.1:{lmtp_port}"\n'
        f'domains = ["in.example"]\nmax_message_bytes = {max_bytes}\n'
        # every load session comes from 127.0.0.1, more than the per-address default of 20
        f"max_connections_per_address = 1000\n"
        f'[log]\nlevel = "warning"\n'
    )
    base = [sys.executable, "-m", "postroom", "-c", str(config)]
    subprocess.run([*base, "init"], check=True, capture_output=True)
    account = json.loads(
        subprocess.run(
            [*base, "account", "create", "Bench", "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    log = folder / "postroom.log"
    process = subprocess.Popen([*base, "ingest"], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_for_line(log, "postroom ingest ready", process)
    return process, account["inbox_address"], config


def start_noop(folder: Path) -> tuple[subprocess.Popen, tuple[int, int]]:
    ports = free_port(), free_port()
    log = folder / "noop.log"
    process = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "noop_server.py"), *map(str, ports)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_for_line(log, "noop ready", process)
    return process, ports


def count_rows(config: Path) -> tuple[int, int]:
    """Return (intake rows, intakes not yet filed) of the postroom under test."""
    from postroom.config import load_settings
    from storage.db import open_database
    from storage.models import Intake

    db = open_database(load_settings(config).storage.url)
    try:
        total = Intake.select().count()
        pending = Intake.select().where(Intake.state == "pending").count()
        failed = Intake.select().where(Intake.state == "failed").count()
        if failed:
            sys.exit(f"{failed} intakes failed to be filed: see the ingest log")
        return total, pending
    finally:
        db.close()


def wait_until_filed(config: Path, timeout: float = 900) -> float:
    """The moment no intake is pending any more (polled every 10 ms, one indexed lookup on
    one connection, so that the polling takes little CPU from the filing it waits for)."""
    from postroom.config import load_settings
    from storage.db import open_database
    from storage.models import Intake

    deadline = time.monotonic() + timeout
    db = open_database(load_settings(config).storage.url)
    try:
        waiting = Intake.select().where(Intake.state == "pending")
        while waiting.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return time.perf_counter()
    finally:
        db.close()


def run(args) -> list[dict]:
    """Every combination, no-op then postroom, each in the same run; returns result rows."""
    sys.path.insert(0, str(REPO))
    rows = []
    expected = 0
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as tmp:
        folder = Path(tmp)
        noop, noop_ports = start_noop(folder)
        ports = free_port(), free_port()
        postroom, inbox, config = start_postroom(folder, *ports)
        try:
            for protocol in args.protocols:
                lmtp = protocol == "lmtp"
                for size in args.sizes:
                    for sessions in args.sessions:
                        pairs = []
                        for _ in range(args.repeat):  # pairs in turn: noise hits both alike
                            before = tree_cpu(noop.pid)
                            base = drive(noop_ports[lmtp], args, sessions, size, lmtp, "x@x.test")
                            base["server_cpu_ms"] = _cpu_ms(before, tree_cpu(noop.pid), args)[0]
                            before = tree_cpu(postroom.pid)
                            ours = drive(ports[lmtp], args, sessions, size, lmtp, inbox)
                            filed_at = wait_until_filed(config)
                            count_rows(config)  # stops the run if any failed
                            time.sleep(SETTLE_SECONDS)
                            cpu = _cpu_ms(before, tree_cpu(postroom.pid), args)
                            ours["server_cpu_ms"], ours["filing_cpu_ms"] = cpu
                            expected += ours["acknowledged"]
                            ours["filed_rate"] = args.messages / (filed_at - ours["started"])
                            pairs.append((base, ours))
                            if args.each:
                                print(
                                    f"  pair {len(pairs)}: no-op {base['rate']:.0f}, postroom"
                                    f" {ours['rate']:.0f} ({ours['rate'] / base['rate']:.2f}),"
                                    f" filed {ours['filed_rate']:.0f}",
                                    flush=True,
                                )
                        rows.append(
                            {
                                "protocol": protocol.upper(),
                                "size": size,
                                "sessions": sessions,
                                "noop": _median_run([b for b, _ in pairs]),
                                "ours": _median_run([o for _, o in pairs]),
                                "ratios": [o["rate"] / b["rate"] for b, o in pairs],
                            }
                        )
                        rows[-1]["ratio"] = statistics.median(rows[-1]["ratios"])
                        report_row(rows[-1])
                        report_cpu(rows[-1])
                        report_spread(rows[-1]["ratios"])
            stored, pending = count_rows(config)
        finally:
            postroom.terminate()
            noop.terminate()
            postroom.wait()
            noop.wait()
    print(f"acknowledged {expected}, stored {stored}, not yet filed {pending}")
    if stored != expected or pending:
        sys.exit("MISSING MESSAGES")
    return rows


HEADER = (
    f"{'proto':<6}{'size':>7}{'sess':>5}{'no-op msg/s':>12}{'postroom':>10}{'ratio':>7}"
    f"{'filed msg/s':>12}{'no-op p50/p99 ms':>18}{'postroom p50/p99 ms':>21}"
)


def _cpu_ms(before: tuple[float, float], after: tuple[float, float], args) -> tuple[float, ...]:
    """CPU milliseconds per message of (the server process, its children) between two reads."""
    return tuple((b - a) * 1000 / args.messages for a, b in zip(before, after, strict=True))


def report_cpu(row: dict) -> None:
    base, ours = row["noop"], row["ours"]
    print(
        f"{'':<6}CPU ms per message: no-op {base['server_cpu_ms']:.2f}"
        f" (load {base['load_cpu_ms']:.2f}); postroom listener {ours['server_cpu_ms']:.2f},"
        f" filing and parsing {ours['filing_cpu_ms']:.2f} (load {ours['load_cpu_ms']:.2f});"
        f" cores busy {base['busy']:.0%} / {ours['busy']:.0%}, stolen {base['steal']:.0%} /"
        f" {ours['steal']:.0%}",
        flush=True,
    )


def median_interval(values: list[float], level: float = 0.9, draws: int = 4000) -> tuple:
    """A bootstrap interval for the median of `values` (resampled with a fixed seed)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    tail = (1 - level) / 2
    return medians[int(draws * tail)], medians[min(draws - 1, int(draws * (1 - tail)))]


def report_spread(ratios: list[float]) -> None:
    """How far the median ratio can be trusted, on a machine whose speed drifts."""
    if len(ratios) < 3:
        return
    low, high = median_interval(ratios)
    print(
        f"{'':<6}ratio of {len(ratios)} pairs: median {statistics.median(ratios):.2f},"
        f" 90% interval of the median {low:.2f}-{high:.2f} (bootstrap),"
        f" pairs {min(ratios):.2f}-{max(ratios):.2f}",
        flush=True,
    )


def _median_run(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "started"}


def report_row(row: dict) -> None:
    base, ours = row["noop"], row["ours"]
    print(
        f"{row['protocol']:<6}{row['size']:>7}{row['sessions']:>5}{base['rate']:>12.0f}"
        f"{ours['rate']:>10.0f}{row['ratio']:>7.2f}{ours['filed_rate']:>12.0f}"
        f"{base['p50']:>9.1f}/{base['p99']:<8.1f}{ours['p50']:>12.1f}/{ours['p99']:<8.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--sessions", default="8,32")
    parser.add_argument("--sizes", default="1024,10240,102400")
    parser.add_argument("--protocols", default="smtp,lmtp")
    parser.add_argument("--repeat", type=int, default=3, help="pairs per case; medians shown")
    parser.add_argument("--generator", choices=("smtp-source", "python"), default=None)
    parser.add_argument("--each", action="store_true", help="print every pair as it ends")
    args = parser.parse_args()
    args.sessions = [int(s) for s in args.sessions.split(",")]
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.protocols = args.protocols.split(",")
    if args.generator is None:
        args.generator = "smtp-source" if Path(SMTP_SOURCE).exists() else "python"
    print(f"{args.messages} messages per run, load from {args.generator}; medians of")
    print(f"{args.repeat} runs of each server in turn, ratio = median of the pairs' ratios")
    print(HEADER)
    run(args)


if __name__ == "__main__":
    main()
