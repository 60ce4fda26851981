"""Why an entry is where it is, in the reader's language (the Unassigned list, the entry page).

domain.routing.explain keeps the English the API and the CLI answer with; this is the same
decision as a page shows it: the rule's heading and its sentence, each a message id, with the
decision's detail (an address, a domain, an entry id) filled in. In English the words are
explain's, letter for letter (tests/test_i18n_pages.py checks every rule).
"""

from __future__ import annotations

from flask_babel import gettext

from domain.routing import Decision, Rule, explain
from domain.translatable import N_

# rule -> (heading, sentence); "" heading: the sentence alone
WORDS: dict[Rule, tuple[str, str]] = {
    Rule.BLOCKED: (N_("blocked"), N_("%(detail)s is on the block list")),
    Rule.THREAD: (N_("thread"), N_("reply to entry %(detail)s")),
    Rule.PROJECT_ADDRESS: (N_("project_address"), N_("sent to the project's reply address")),
    Rule.SENDER: (N_("sender"), N_("%(detail)s is a customer address")),
    Rule.SHARED_ADDRESS: (
        N_("unassigned"),
        N_("%(detail)s is a customer address of %(count)s projects"),
    ),
    Rule.SAME_DOMAIN: (N_("unassigned"), N_("unknown sender, projects at %(detail)s")),
    Rule.UNKNOWN_SENDER: (N_("unassigned"), N_("unknown sender %(detail)s")),
    Rule.NO_SENDER: (N_("unassigned"), N_("no From address")),
    Rule.UNPARSEABLE: (N_("unassigned"), N_("the message could not be parsed")),
    Rule.BY_HAND: ("", N_("assigned by hand")),
    Rule.ADDED_BY_HAND: ("", N_("added by hand")),
    Rule.SYSTEM: ("", N_("system")),
    Rule.OUTBOUND: (N_("outbound"), N_("written in postroom")),
    Rule.PROJECT_DELETED: ("", N_("project %(detail)s was deleted")),
    Rule.BOUNCE: (N_("bounce"), N_("returned mail of entry %(detail)s")),
}


def route_words(decision: Decision, *, unassigned_list: bool = False) -> str:
    """explain(decision) in the reader's language; a rule without words here (LEGACY: the
    stored text itself) as explain has it."""
    words = WORDS.get(decision.rule)
    if words is None:
        return explain(decision, unassigned_list=unassigned_list)
    heading, sentence = words
    text = gettext(sentence, detail=decision.detail, count=len(decision.candidates))
    if not heading or (unassigned_list and heading == "unassigned"):
        return text
    return gettext("%(heading)s: %(reason)s", heading=gettext(heading), reason=text)
