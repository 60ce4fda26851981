"""The German catalog is complete and what ships is what was written (issue 18, acceptance 1).

Every message id Babel extracts from the code and the templates (babel.cfg: admin_ui, postroom,
domain; keywords _, gettext, ngettext, N_, lazy_gettext) must be in
admin_ui/translations/de/LC_MESSAGES/messages.po with a German text that is not empty and not
the English itself (unless the word is the same in German: SAME_IN_GERMAN). The committed
messages.mo must be the compiled .po.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

REPO = Path(__file__).resolve().parent.parent
CATALOGS = REPO / "admin_ui" / "translations"
PO = CATALOGS / "de" / "LC_MESSAGES" / "messages.po"
MO = CATALOGS / "de" / "LC_MESSAGES" / "messages.mo"
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "lazy_ngettext": (1, 2)}

# English ids whose German is rightly the same word (names, loanwords German uses as is)
SAME_IN_GERMAN = {
    "Tickets",
    "Ticket",
    "Status",
    "E-Mail",
    "Spam",
    "Team",
    "Admin",
    "Name",
    "Link",
    "Details",
    "Filter",
    "OK",
    "postroom",
    "API",
    "SMTP",
    "Text",
    "HTML",
    "Start",
    "Code",
    "Token",
    "Tokens",
    "Bounce",
    "Bounces",
    "Feedback",
    "System",
    "Partner",
    "Domain",
    "%(heading)s: %(reason)s",
    "(optional)",
}


def _read_po():
    with PO.open("rb") as handle:
        return read_po(handle, locale="de")


def _messages(catalog) -> dict:
    def frozen(value):
        return tuple(value) if isinstance(value, list | tuple) else value

    return {frozen(m.id): frozen(m.string) for m in catalog if m.id}


def _extracted() -> dict:
    """msgid (a tuple for plurals) -> the first place it is used."""
    with (REPO / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(REPO), method_map, options_map, keywords=KEYWORDS
    ):
        found.setdefault(message, f"{filename}:{lineno}")
    return found


def test_committed_mo_is_the_compiled_po(tmp_path):
    compiled = io.BytesIO()
    write_mo(compiled, _read_po())
    compiled.seek(0)
    with MO.open("rb") as handle:
        shipped = read_mo(handle)
    expected = _messages(read_mo(compiled))
    assert _messages(shipped) == expected, (
        "messages.mo is stale: run `.venv/bin/pybabel compile -d admin_ui/translations`"
    )


def test_po_has_no_duplicate_ids_and_placeholders_match():
    text = PO.read_text(encoding="utf-8")
    ids = re.findall(r'^msgid "(.*)"$', text, flags=re.MULTILINE)
    singles = [i for i in ids if i]  # multi-line ids start with msgid "" and are rare
    duplicates = sorted({i for i in singles if singles.count(i) > 1})
    assert not duplicates, f"msgids in messages.po twice: {duplicates}"
    catalog = _read_po()
    problems = [
        f"{message.id!r}: {'; '.join(map(str, errors))}" for message, errors in catalog.check()
    ]
    assert not problems, "\n".join(problems)


def test_every_extracted_message_has_a_german_translation():
    catalog = _read_po()
    missing, empty, english = [], [], []
    for msgid, where in sorted(_extracted().items(), key=lambda item: item[1]):
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        entry = catalog.get(key)
        if entry is None or entry.fuzzy:
            missing.append(f"{where}: {msgid!r}")
            continue
        ids = msgid if isinstance(msgid, tuple) else (msgid,)
        forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if not all(forms):
            empty.append(f"{where}: {msgid!r}")
        elif any(form == ids[min(i, len(ids) - 1)] for i, form in enumerate(forms)) and not (
            set(ids) <= SAME_IN_GERMAN
        ):
            english.append(f"{where}: {msgid!r}")
    report = []
    if missing:
        report.append("not in messages.po (append them with a German text):")
        report += missing
    if empty:
        report.append("empty German text:")
        report += empty
    if english:
        report.append("German text identical to the English (add to SAME_IN_GERMAN if right):")
        report += english
    assert not report, "\n".join(report)


def test_extraction_finds_the_core_pages():
    """The check above reads the real templates (a broken babel.cfg would make it vacuous)."""
    found = _extracted()
    assert "Unassigned" in found and "Log out" in found, sorted(found)[:20]
