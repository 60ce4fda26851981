"""axe-core in Chromium: the accessibility checker injected into a page, and what it finds.

axe-core comes from the npm registry (tests/a11y/package.json and its lock file pin the
version; scripts/test installs it with ``npm ci``).  ``require_axe()`` skips a test when it is
missing, except under ``CI=true``, where it fails.  ``violations(page)`` runs the WCAG 2.0 and
2.1 A and AA rule sets on the page as it is now and returns one line per failing element.

The HTML of a customer's mail, inside the entry page's sandboxed frame, is the sender's and
not ours: the frame itself is checked (it has to have a title), its content is not.
"""

from __future__ import annotations

from pathlib import Path

from tests.browser import require

AXE = Path(__file__).resolve().parent / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

RUN = """async (tags) => {
    const result = await axe.run(
        {exclude: [["iframe.mail"]]},
        {runOnly: {type: "tag", values: tags}, iframes: false, resultTypes: ["violations"]});
    return result.violations.map(v => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary,
                                 html: n.html.slice(0, 160)})),
    }));
}"""


def axe_missing() -> str | None:
    """None when axe-core is installed, else why not."""
    if AXE.is_file():
        return None
    return f"{AXE} is missing (npm ci --prefix tests/a11y; scripts/test runs it)"


def require_axe() -> None:
    """Skip the calling test when axe-core is not installed; under CI=true, fail instead."""
    require(axe_missing(), "accessibility checks", "axe-core")


def violations(page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page as shown now, one line per element."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # evaluated through the DevTools protocol: the page's Content-Security-Policy (no
        # inline scripts) stays as it is, and the check sees the page as users get it
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    found = page.evaluate(RUN, WCAG_AA)
    return [
        f"{v['id']} ({v['impact']}): {node['target']}: {node['summary']} | {node['html']}"
        for v in found
        for node in v["nodes"]
    ]
