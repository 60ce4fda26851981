"""bench/parse.py reports both parsers' figures and leaves no git worktree behind.

A smoke run (--quick) against HEAD, which every checkout has: nothing here is timed, and no
figure is compared with another; the benchmark measures speed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "parse.py"
SECONDS = r"\d+\.\d\d (?:ms|s)"


def bench(*args: str) -> subprocess.CompletedProcess:
    """Run bench/parse.py against HEAD with this interpreter."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the baseline is a git worktree")
    command = [sys.executable, str(BENCH), "--baseline", "HEAD", "--python", sys.executable]
    return subprocess.run([*command, *args], cwd=REPO, capture_output=True, text=True)


def worktree_of(output: str) -> Path:
    """The baseline worktree the run named."""
    return Path(re.search(r"^baseline worktree: (.+)$", output, re.MULTILINE)[1])


def assert_gone(tree: Path) -> None:
    """Neither git nor the disk knows the worktree any more."""
    listed = subprocess.run(
        ["git", "worktree", "list", "--porcelain"], cwd=REPO, capture_output=True, text=True
    ).stdout
    assert f"worktree {tree}\n" not in listed
    assert not tree.parent.exists()


def test_a_quick_run_shows_speed_and_memory_of_both_parsers_for_every_mail(tmp_path):
    done = bench("--quick", "--json", str(tmp_path / "result.json"))
    assert done.returncode == 0, done.stderr
    for label in ("typical 10 KB", "300 recipients", "big 14 MB"):
        assert re.search(
            rf"^{label} +\d+\.\d (?:KB|MB) +{SECONDS} +{SECONDS} +\d+\.\d\d ",
            done.stdout,
            re.MULTILINE,
        ), done.stdout
    for side in ("baseline", "current"):
        assert re.search(rf"^  {side} +\d+\.\d MB = \d+\.\d\d x message size", done.stdout, re.M)
    result = json.loads((tmp_path / "result.json").read_text())
    big = result["inputs"]["big"]
    assert 13_000_000 < big["bytes"] < 15_000_000
    assert 9_000 < result["inputs"]["typical"]["bytes"] < 12_000
    for side in ("baseline", "current"):
        assert big[side]["peak_growth"] > 0
        assert big[side]["peak_multiple"] == big[side]["peak_growth"] / big["bytes"]
        for name in ("typical", "crowded", "big"):
            assert result["inputs"][name][side]["seconds"] > 0
            assert result["inputs"][name][side]["read"]["subject"].startswith("AW: Rückfrage")
    assert_gone(Path(result["worktree"]))


def test_a_run_that_fails_still_removes_the_baseline_worktree():
    done = bench("--quick", "--python", shutil.which("false") or "/bin/false")
    assert done.returncode != 0
    assert "the parse child" in done.stderr
    assert_gone(worktree_of(done.stdout))
