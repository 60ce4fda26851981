"""Parse speed and memory: the working tree's parser next to a baseline revision's, in one run.

Usage: .venv/bin/python bench/parse.py [--baseline d49111a] [--rounds 7] [--repeat 200]
                                       [--quick] [--each] [--json PATH]

`smtpd_ingest.parse.parse_message` of both versions reads the same generated mail (seeded, the
same bytes every run): a typical 10 KB mail (multipart/alternative text and HTML, a German subject
in encoded words, a few To/Cc, a small PNG), a 14 MB mail (text, HTML, a 9.4 MB PDF and three
photos, base64 as on the wire) and a mail to 300 recipients with a long References. The
baseline is a `git worktree add --detach` of the revision in a temporary folder (removed at the
end, also on failure); each measurement runs in a child process of this repository's venv with
PYTHONPATH set to the one tree or the other. The two sides run in turn, the order flipped each
round (AB BA AB ...), so that a machine that drifts hits both alike; the ratio is the median of
the rounds' ratios (current / baseline) with a bootstrap 90 % interval.

Small mail: many parses per child process, after one unmeasured parse. Big mail: one parse per
fresh child process (after a small one, so that lazy imports and caches are not counted); its
memory is the peak RSS growth over the RSS just before the parse, from /proc/self/status after
resetting the peak (/proc/self/clear_refs). Not ru_maxrss: a child inherits in it the peak of
the process that started it (Linux keeps the pre-exec peak), which can hide the parse's.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # as a module too (tests)
from parse_mail import BIG_SIZE, write_inputs

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BASELINE = "d49111a"  # the parser before issue 16 (compat32 tree, hand-made decoding)
SMALL_INPUTS = {"typical": 1, "crowded": 4}  # --repeat divided by this: parses per child
CHILD_TIMEOUT = 900


# --- the child process: one side, one measurement -------------------------------------------


def status_kb(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def summary(parsed) -> dict:
    """What the parser read, to see that both sides read the same mail."""
    return {
        "subject": parsed.subject,
        "from": parsed.from_.address if parsed.from_ else None,
        "to": len(parsed.to),
        "references": len(parsed.references),
        "attachments": len(parsed.attachments),
        "attachment_bytes": sum(len(a.data) for a in parsed.attachments),
        "text_chars": len(parsed.text),
    }


def child_time(mails: list[tuple[Path, int]]) -> dict:
    """Parse each small mail its number of times after one unmeasured parse: median seconds."""
    from smtpd_ingest import parse

    result = {"module": parse.__file__, "mails": {}}
    for path, repeat in mails:
        raw = path.read_bytes()
        try:
            read = summary(parse.parse_message(raw))
        except parse.ParseError as exc:
            result["mails"][path.stem] = {"error": str(exc)}
            continue
        gc.collect()
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            parse.parse_message(raw)
            times.append(time.perf_counter() - started)
        result["mails"][path.stem] = {"seconds": statistics.median(times), "read": read}
    return result


def child_memory(warmup: Path, mail: Path) -> dict:
    """Parse the big mail once in this fresh process: seconds and peak RSS growth in bytes."""
    from smtpd_ingest import parse

    parse.parse_message(warmup.read_bytes())  # lazy imports, caches, one-time set-up
    raw = mail.read_bytes()
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
    before = status_kb("VmRSS")
    started = time.perf_counter()
    try:
        parsed = parse.parse_message(raw)
    except parse.ParseError as exc:
        return {"module": parse.__file__, "error": str(exc)}
    seconds = time.perf_counter() - started
    growth = (status_kb("VmHWM") - before) * 1024
    return {"module": parse.__file__, "seconds": seconds, "growth": growth, "read": summary(parsed)}


# --- the parent: worktree, rounds, report ---------------------------------------------------


def git(*args: str) -> str:
    """Run git in the repository; return its output."""
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.rstrip()  # porcelain lines start with a space


@contextmanager
def baseline_tree(revision: str) -> Iterator[Path]:
    """A detached worktree of `revision` in a temporary folder, removed again afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="postroom-bench-parse-"))
    tree = folder / "baseline"
    try:
        git("worktree", "add", "--detach", "--quiet", str(tree), revision)
        yield tree
    finally:
        if tree.exists():
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)],
                cwd=REPO,
                capture_output=True,
            )
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=REPO, capture_output=True)


def run_child(python: str, tree: Path, work: Path, *args: str) -> dict:
    """Run this file's child mode with PYTHONPATH=tree; return its JSON answer."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("PYTHONHOME", None)
    done = subprocess.run(
        [python, str(Path(__file__).resolve()), "--child", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    if done.returncode:
        raise SystemExit(f"the parse child ({tree}) exited {done.returncode}:\n{done.stderr}")
    answer = json.loads(done.stdout)
    if not Path(answer["module"]).is_relative_to(tree):
        raise SystemExit(f"the child parsed with {answer['module']}, not the parser in {tree}")
    return answer


def measure(args, trees: dict[str, Path], inputs: dict[str, Path], work: Path) -> dict:
    """Every round: each side's small-mail child and big-mail child, the order flipped."""
    runs: dict[str, list] = {"baseline": [], "current": []}
    for number in range(args.rounds):
        order = ("baseline", "current") if number % 2 == 0 else ("current", "baseline")
        for side in order:
            small_mails = [
                f"{inputs[name]}={max(1, args.repeat // share)}"
                for name, share in SMALL_INPUTS.items()
            ]
            small = run_child(args.python, trees[side], work, "time", *small_mails)
            big = run_child(
                args.python, trees[side], work, "memory", str(inputs["typical"]), str(inputs["big"])
            )
            runs[side].append({**small["mails"], "big": big})
        if args.each:
            print(f"  round {number + 1}: {round_ratios(runs)}", flush=True)
    return runs


def round_ratios(runs: dict[str, list]) -> str:
    """The last round's seconds per parse, current / baseline, per input."""
    baseline, current = runs["baseline"][-1], runs["current"][-1]
    return ", ".join(
        f"{name} {current[name]['seconds'] / baseline[name]['seconds']:.2f}"
        for name in baseline
        if "seconds" in baseline[name] and "seconds" in current[name]
    )


def summarise(runs: dict[str, list], inputs: dict[str, Path]) -> dict:
    """Medians per side and input, the rounds' ratios and the memory figures."""
    from ingest import median_interval

    result = {}
    for name in (*SMALL_INPUTS, "big"):
        size = inputs[name].stat().st_size
        row: dict = {"bytes": size}
        errors = {
            side: failed[name]["error"]
            for side, rounds in runs.items()
            for failed in rounds
            if "error" in failed[name]
        }
        if errors:
            row["errors"] = errors
            result[name] = row
            continue
        for side, rounds in runs.items():
            row[side] = {
                "seconds": statistics.median(r[name]["seconds"] for r in rounds),
                "read": rounds[0][name]["read"],
            }
            if name == "big":
                growths = [r[name]["growth"] for r in rounds]
                row[side]["peak_growth"] = statistics.median(growths)
                row[side]["peak_growth_range"] = [min(growths), max(growths)]
                row[side]["peak_multiple"] = statistics.median(growths) / size
        ratios = [
            c[name]["seconds"] / b[name]["seconds"]
            for b, c in zip(runs["baseline"], runs["current"], strict=True)
        ]
        row["ratios"] = ratios
        row["ratio"] = statistics.median(ratios)
        row["interval"] = list(median_interval(ratios)) if len(ratios) >= 3 else None
        row["memory_ratio"] = (
            row["current"]["peak_growth"] / row["baseline"]["peak_growth"]
            if name == "big"
            else None
        )
        result[name] = row
    return result


LABELS = {
    "typical": "typical 10 KB",
    "crowded": "300 recipients",
    "big": "big 14 MB",
}


def seconds_text(seconds: float) -> str:
    """Milliseconds below a second, else seconds."""
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def size_text(size: int) -> str:
    """KB or MB (decimal), as the table shows message sizes."""
    return f"{size / 1e3:.1f} KB" if size < 1e6 else f"{size / 1e6:.1f} MB"


def report(result: dict) -> str:
    """The table: per input, seconds per parse of both sides and their ratio; then memory."""
    lines = [
        f"{'input':<16}{'size':>10}{'baseline':>13}{'current':>13}{'ratio':>7}  90 % interval",
    ]
    for name, row in result["inputs"].items():
        label = f"{LABELS.get(name, name):<16}{size_text(row['bytes']):>10}"
        if "errors" in row:
            lines.append(f"{label}  parse error: {row['errors']}")
            continue
        interval = "{:.2f}-{:.2f}".format(*row["interval"]) if row["interval"] else "-"
        lines.append(
            f"{label}{seconds_text(row['baseline']['seconds']):>13}"
            f"{seconds_text(row['current']['seconds']):>13}{row['ratio']:>7.2f}  {interval}"
        )
    big = result["inputs"].get("big", {})
    if "errors" not in big:
        lines.append("peak RSS growth of one big-mail parse (median of fresh processes, min-max):")
        for side in ("baseline", "current"):
            low, high = big[side]["peak_growth_range"]
            lines.append(
                f"  {side:<9}{big[side]['peak_growth'] / 1e6:>7.1f} MB ="
                f" {big[side]['peak_multiple']:.2f} x message size"
                f" ({low / 1e6:.1f}-{high / 1e6:.1f} MB)"
            )
        lines.append(f"  ratio current / baseline {big['memory_ratio']:.2f}")
    for name, row in result["inputs"].items():
        if "errors" not in row and row["baseline"]["read"] != row["current"]["read"]:
            lines.append(
                f"note: the two parsers read {LABELS.get(name, name)} differently:"
                f" baseline {row['baseline']['read']}, current {row['current']['read']}"
            )
    return "\n".join(lines)


def current_label() -> str:
    """The working tree: HEAD's short hash and the product files changed or added since."""
    packages = ("postroom/", "storage/", "smtpd_ingest/", "admin_ui/", "domain/")
    status = git("status", "--porcelain", "--untracked-files=all", "--", *packages)
    changed = sorted(line[3:] for line in status.splitlines())
    head_commit = git("rev-parse", "--short", "HEAD")
    return f"{head_commit} + not committed: {', '.join(changed)}" if changed else head_commit


def run(args) -> dict:
    """Build the inputs and the baseline worktree, measure both sides, return the result."""
    baseline = git("rev-parse", "--short", f"{args.baseline}^{{commit}}")
    current = current_label()
    print(
        f"parse: working tree ({current}) against {args.baseline} ({baseline}); {args.rounds}"
        f" rounds in turn; per child process {args.repeat} parses of the 10 KB mail and"
        f" {max(1, args.repeat // SMALL_INPUTS['crowded'])} of the 300 recipients (medians),"
        " one of the big mail",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="postroom-bench-parse-inputs-") as work_name:
        work = Path(work_name)
        inputs = write_inputs(work, args.big_size)
        with baseline_tree(args.baseline) as tree:
            print(f"baseline worktree: {tree}", flush=True)
            runs = measure(args, {"baseline": tree, "current": REPO}, inputs, work)
            worktree = str(tree)
        summary_ = summarise(runs, inputs)
    result = {
        "baseline": baseline,
        "current": current,
        "rounds": args.rounds,
        "repeat": args.repeat,
        "worktree": worktree,
        "inputs": summary_,
    }
    print(report(result), flush=True)
    return result


def child_main(argv: list[str]) -> None:
    """`--child time MAIL=REPEAT...` or `--child memory WARMUP MAIL`: print JSON."""
    kind, *rest = argv
    # the parser imports from PYTHONPATH (the tree under test) and the venv, not from bench/
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH]
    if kind == "time":
        pairs = [item.rpartition("=") for item in rest]
        answer = child_time([(Path(path), int(repeat)) for path, _, repeat in pairs])
    else:
        answer = child_memory(Path(rest[0]), Path(rest[1]))
    print(json.dumps(answer))


def main() -> None:
    """Parse the command line; run the child mode or the whole benchmark."""
    if sys.argv[1:2] == ["--child"]:
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="git revision (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of both sides, in turn")
    parser.add_argument(
        "--repeat",
        type=int,
        default=200,
        help="parses of the 10 KB mail per child (a quarter of them for the 300 recipients)",
    )
    parser.add_argument("--big-size", type=int, default=BIG_SIZE, help="bytes of the big mail")
    parser.add_argument("--quick", action="store_true", help="one round, 4 parses per small mail")
    parser.add_argument("--json", type=Path, help="also write the result here as JSON")
    parser.add_argument("--each", action="store_true", help="print each round as it ends")
    venv_python = REPO / ".venv" / "bin" / "python"
    parser.add_argument(
        "--python",
        default=str(venv_python) if venv_python.exists() else sys.executable,
        help="interpreter of both sides (default: this repository's venv)",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.repeat = 1, 4
    # a terminated run still removes its worktree (the finally blocks run on SystemExit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
