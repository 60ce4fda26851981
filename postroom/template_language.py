"""What a mail template may say: variables, a few filters and {% if %}, checked before use.

A template is parsed with Jinja2's own lexer and parser, then every node of the tree is held
against a short list. What is left cannot repeat anything: no loops, macros, calls, attribute
or item access, arithmetic, {% set %} or other templates, and only filters that change the case
or pick a value. So every node runs at most once per render, and a render does work in
proportion to the template's size plus the values it names.

Bounds: a subject or body has at most 20,000 characters, 2,000 tokens (lexing stops there,
so even checking a hostile text stays cheap), 1,000 parts nested at most 30 deep and 100
uses of variables; each value is cut to 5,000 characters. Case filters at most triple a text
(ß -> SS), so a render builds at most 3 × (20,000 + 100 × 5,000) characters; the caller
(postroom.mail_templates) also refuses a result over 200,000 characters. truncate takes
written values in range only (TRUNCATE_*), where Jinja2 would fail an assertion.
"""

from __future__ import annotations

from collections.abc import Collection

from jinja2 import Environment, nodes

from domain.templates import MAX_SOURCE_CHARS  # of a subject or a body: the storing rule's bound

MAX_TOKENS = 2_000  # what the lexer reads before it gives up
MAX_NODES = 1_000  # parts of the parsed template
MAX_DEPTH = 30  # nesting of {% if %} and expressions
MAX_VARIABLE_USES = 100  # {{ name }}, {% if name %}, default(name) ... all count
MAX_VALUE_CHARS = 5_000  # a value is cut to this before it goes in (as long as a signature)
MAX_ARGUMENT_CHARS = 100  # a text given to a filter, or in an `in (...)` list
MAX_NUMBER = 1_000_000

# filters that pick a value or change its case; none pads, repeats or replaces
FILTERS = ("default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate")
TESTS = ("defined", "undefined", "none", "string", "number")
COMPARISONS = {"eq": "==", "ne": "!=", "in": "in", "notin": "not in"}

# what a template may not contain, as the sentence the person who wrote it sees ({line})
NOT_ALLOWED = {
    nodes.For: "It uses a loop ({{% for %}}) on line {line}, which is not allowed.",
    nodes.Macro: "It uses a macro ({{% macro %}}) on line {line}, which is not allowed.",
    nodes.CallBlock: "It uses a call block ({{% call %}}) on line {line}, which is not allowed.",
    nodes.Call: "It uses a call such as name(…) on line {line}, which is not allowed.",
    nodes.Include: (
        "It uses another template ({{% include %}}) on line {line}, which is not allowed."
    ),
    nodes.Import: (
        "It uses another template ({{% import %}}) on line {line}, which is not allowed."
    ),
    nodes.FromImport: (
        "It uses another template ({{% from … import %}}) on line {line}, which is not allowed."
    ),
    nodes.Extends: (
        "It uses another template ({{% extends %}}) on line {line}, which is not allowed."
    ),
    nodes.Block: "It uses a block ({{% block %}}) on line {line}, which is not allowed.",
    nodes.Assign: "It uses {{% set %}} on line {line}, which is not allowed.",
    nodes.AssignBlock: "It uses {{% set %}} on line {line}, which is not allowed.",
    nodes.With: "It uses {{% with %}} on line {line}, which is not allowed.",
    nodes.FilterBlock: (
        "It uses a filter block ({{% filter %}}) on line {line}, which is not allowed."
    ),
    nodes.Scope: "It uses {{% autoescape %}} on line {line}, which is not allowed.",
    nodes.ScopedEvalContextModifier: (
        "It uses {{% autoescape %}} on line {line}, which is not allowed."
    ),
    nodes.EvalContextModifier: "It uses {{% autoescape %}} on line {line}, which is not allowed.",
    nodes.Getattr: "It uses an attribute (name.something) on line {line}, which is not allowed.",
    nodes.Getitem: "It uses an index (name[…]) on line {line}, which is not allowed.",
    nodes.Slice: "It uses an index (name[…]) on line {line}, which is not allowed.",
    nodes.List: "It uses a list on line {line}, which is not allowed.",
    nodes.Tuple: "It uses a list on line {line}, which is not allowed.",
    nodes.Dict: "It uses a dictionary on line {line}, which is not allowed.",
    nodes.Add: "It uses arithmetic (+) on line {line}, which is not allowed.",
    nodes.Sub: "It uses arithmetic (-) on line {line}, which is not allowed.",
    nodes.Mul: "It uses arithmetic (*) on line {line}, which is not allowed.",
    nodes.Div: "It uses arithmetic (/) on line {line}, which is not allowed.",
    nodes.FloorDiv: "It uses arithmetic (//) on line {line}, which is not allowed.",
    nodes.Mod: "It uses arithmetic (%) on line {line}, which is not allowed.",
    nodes.Pow: "It uses arithmetic (**) on line {line}, which is not allowed.",
    nodes.Neg: "It uses arithmetic (-) on line {line}, which is not allowed.",
    nodes.Pos: "It uses arithmetic (+) on line {line}, which is not allowed.",
}
UNKNOWN_PART = "It uses something templates cannot do ({kind}) on line {line}."
ALLOWED = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.If,
    nodes.CondExpr,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Concat,
)
# truncate(length, killwords, end, leeway): written values in these ranges only (Jinja2
# asserts length >= len(end) and leeway >= 0; an assertion is no message for the writer)
TRUNCATE_ARGUMENTS = ("length", "killwords", "end", "leeway")
TRUNCATE_LENGTH = (1, MAX_VALUE_CHARS)
TRUNCATE_END_CHARS = 10  # and no longer than the length
TRUNCATE_LEEWAY = (0, 100)
TRUNCATE_USAGE = (
    "It gives the filter truncate on line {line} something it does not take: truncate(length, "
    "cut words, end, leeway) takes a length from {shortest} to {longest:,}, true or false, an "
    "end text of at most {end} characters (and no longer than the length) and a leeway from "
    "{least_leeway} to {most_leeway}, each written out."
)

# Every message is one whole sentence with named placeholders (ready for translation);
# postroom.mail_templates puts it after "The subject/body cannot be used."
HINT = "Templates take variables, the filters {filters} and {{% if %}} conditions.".format(
    filters=", ".join(FILTERS)
)
WITH_HINT = "{problem} " + HINT.replace("{", "{{").replace("}", "}}")


class Refusal(Exception):
    """Why a template is refused, as one sentence; hint: HINT follows it."""

    def __init__(self, message: str, hint: bool = False, **values) -> None:
        text = message.format(**values)
        if hint:
            text = WITH_HINT.format(problem=text)
        super().__init__(text)
        self.text = text


def checked(env: Environment, source: str, variables: Collection[str]) -> nodes.Template:
    """Parse the source and return its tree if it only uses what templates may; else Refusal."""
    if len(source) > MAX_SOURCE_CHARS:
        raise Refusal("It is too long (at most {limit:,} characters).", limit=MAX_SOURCE_CHARS)
    _count_tokens(env, source)
    try:
        tree = env.parse(source)
    except RecursionError:
        raise Refusal(
            "It is nested too deeply (at most {limit} levels).", limit=MAX_DEPTH
        ) from None
    _Checker(variables).walk(tree)
    return tree


def _count_tokens(env: Environment, source: str) -> None:
    try:
        for number, _token in enumerate(env.lexer.tokeniter(source, None), 1):
            if number > MAX_TOKENS:
                raise Refusal("It has too many parts (at most {limit:,} tokens).", limit=MAX_TOKENS)
    except ValueError as error:  # a number too long to read, say
        raise Refusal("It cannot be read: {detail}.", detail=error) from None


class _Checker:
    def __init__(self, variables: Collection[str]) -> None:
        self.variables = variables
        self.nodes = self.uses = 0

    def walk(self, tree: nodes.Template) -> None:
        stack = [(tree, 0)]  # no recursion: a deep tree is refused, never a RecursionError
        while stack:
            node, depth = stack.pop()
            self.nodes += 1
            if self.nodes > MAX_NODES:
                raise Refusal("It has too many parts (at most {limit:,}).", limit=MAX_NODES)
            if depth > MAX_DEPTH:
                raise Refusal(
                    "It is nested too deeply on line {line} (at most {limit} levels).",
                    line=node.lineno,
                    limit=MAX_DEPTH,
                )
            children = self._children(node)  # pushed last first: refusals in reading order
            stack.extend((child, depth + 1) for child in reversed(children))

    def _children(self, node: nodes.Node) -> list[nodes.Node]:
        """Check one node and return the nodes under it that still need the general check."""
        kind = type(node)  # exact: And, Or and Not are subclasses of the arithmetic nodes
        if kind is nodes.Name:
            self._variable(node)
            return []
        if kind is nodes.Const:
            self._constant(node, limit=None)
            return []
        if kind is nodes.Filter:
            return self._filter(node)
        if kind is nodes.Test:
            return self._test(node)
        if kind is nodes.Compare:
            return self._compare(node)
        if kind in ALLOWED:
            return list(node.iter_child_nodes())
        line = getattr(node, "lineno", None) or 1
        if kind in NOT_ALLOWED:
            raise Refusal(NOT_ALLOWED[kind], hint=True, line=line)
        raise Refusal(UNKNOWN_PART, hint=True, line=line, kind=kind.__name__)

    def _variable(self, node: nodes.Name) -> None:
        if node.name not in self.variables:
            known = ", ".join(self.variables)
            raise Refusal(
                "It uses an unknown variable on line {line}: '{name}' is undefined "
                "(known: {known}).",
                line=node.lineno,
                name=node.name,
                known=known,
            )
        self.uses += 1
        if self.uses > MAX_VARIABLE_USES:
            raise Refusal(
                "It uses variables too often (at most {limit} times).", limit=MAX_VARIABLE_USES
            )

    def _constant(self, node: nodes.Const, limit: int | None) -> None:
        value = node.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not abs(value) <= MAX_NUMBER:  # also NaN and infinity
                raise Refusal(
                    "It uses a number larger than {limit:,} on line {line}.",
                    limit=MAX_NUMBER,
                    line=node.lineno,
                )
        elif isinstance(value, str) and limit is not None and len(value) > limit:
            raise Refusal(
                "It gives a text of more than {limit} characters on line {line} where only "
                "a short one fits.",
                limit=limit,
                line=node.lineno,
            )
        elif value is not None and not isinstance(value, str | bool):
            raise Refusal(
                "It uses a value templates cannot hold on line {line}.", hint=True, line=node.lineno
            )

    def _argument(self, node: nodes.Node, name: str) -> None:
        """A filter's argument: a short text, a number, true/false/none or a variable."""
        if type(node) is nodes.Name:
            self._variable(node)
        elif type(node) is nodes.Const:
            self._constant(node, limit=MAX_ARGUMENT_CHARS)
        else:
            raise Refusal(
                "It gives the filter {filter} something other than a text, a number or a "
                "variable on line {line}.",
                hint=True,
                filter=name,
                line=node.lineno,
            )

    def _filter(self, node: nodes.Filter) -> list[nodes.Node]:
        if node.name not in FILTERS:
            raise Refusal(
                "It uses the filter {filter} on line {line}, which is not allowed.",
                hint=True,
                filter=node.name,
                line=node.lineno,
            )
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise Refusal(
                "It passes *args or **kwargs to the filter {filter} on line {line}.",
                hint=True,
                filter=node.name,
                line=node.lineno,
            )
        for argument in (*node.args, *(keyword.value for keyword in node.kwargs)):
            self._argument(argument, node.name)
        if node.name == "truncate":
            _check_truncate(node)
        self.nodes += len(node.args) + len(node.kwargs)
        return [node.node] if node.node is not None else []

    def _test(self, node: nodes.Test) -> list[nodes.Node]:
        if node.name not in TESTS or node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
            tests = ", ".join(TESTS)
            raise Refusal(
                "It uses the test 'is {test}' on line {line}; the tests that exist are {tests}.",
                test=node.name,
                line=node.lineno,
                tests=tests,
            )
        return [node.node]

    def _compare(self, node: nodes.Compare) -> list[nodes.Node]:
        """==, != between values; in / not in only against a written list of short texts."""
        for operand in node.ops:
            if operand.op not in COMPARISONS:
                allowed = ", ".join(COMPARISONS.values())
                raise Refusal(
                    "It compares with an operator other than {allowed} on line {line}.",
                    allowed=allowed,
                    line=node.lineno,
                )
            if operand.op in ("in", "notin"):
                if type(operand.expr) not in (nodes.Tuple, nodes.List):
                    raise Refusal(
                        "It uses 'in' with something other than a written list such as "
                        "('done', 'live') on line {line}.",
                        line=node.lineno,
                    )
                for item in operand.expr.items:
                    if type(item) is not nodes.Const:
                        raise Refusal(
                            "It lists something other than texts after 'in' on line {line}.",
                            line=node.lineno,
                        )
                    self._constant(item, limit=MAX_ARGUMENT_CHARS)
                self.nodes += len(operand.expr.items)
        return [node.expr] + [o.expr for o in node.ops if o.op not in ("in", "notin")]


def _check_truncate(node: nodes.Filter) -> None:
    """truncate takes written values only, each in its range (see TRUNCATE_*)."""
    given = dict(zip(TRUNCATE_ARGUMENTS, node.args, strict=False))
    keywords = [(keyword.key, keyword.value) for keyword in node.kwargs]
    if len(node.args) > len(TRUNCATE_ARGUMENTS) or any(
        key not in TRUNCATE_ARGUMENTS or key in given for key, _value in keywords
    ):
        raise _truncate_refused(node)
    given.update(keywords)
    values = {}
    for key, argument in given.items():
        if type(argument) is not nodes.Const:
            raise _truncate_refused(node)
        values[key] = argument.value
    length, end = values.get("length", 255), values.get("end", "...")
    leeway = values.get("leeway", 0)
    low, high = TRUNCATE_LENGTH
    if not (_whole(length) and low <= length <= high):
        raise _truncate_refused(node)
    if not isinstance(end, str) or len(end) > min(TRUNCATE_END_CHARS, length):
        raise _truncate_refused(node)
    if not isinstance(values.get("killwords", False), bool):
        raise _truncate_refused(node)
    low, high = TRUNCATE_LEEWAY
    if leeway is not None and not (_whole(leeway) and low <= leeway <= high):
        raise _truncate_refused(node)


def _truncate_refused(node: nodes.Filter) -> Refusal:
    return Refusal(
        TRUNCATE_USAGE,
        line=node.lineno,
        shortest=TRUNCATE_LENGTH[0],
        longest=TRUNCATE_LENGTH[1],
        end=TRUNCATE_END_CHARS,
        least_leeway=TRUNCATE_LEEWAY[0],
        most_leeway=TRUNCATE_LEEWAY[1],
    )


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
