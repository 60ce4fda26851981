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
(postroom.mail_templates) also refuses a result over 200,000 characters.
"""

from __future__ import annotations

from collections.abc import Collection

from jinja2 import Environment, nodes

MAX_SOURCE_CHARS = 20_000  # of a subject or a body
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

# what a template may not contain, in the words the person who wrote it sees
NOT_ALLOWED = {
    nodes.For: "a loop ({% for %})",
    nodes.Macro: "a macro ({% macro %})",
    nodes.CallBlock: "a call block ({% call %})",
    nodes.Call: "a call such as name(…)",
    nodes.Include: "another template ({% include %})",
    nodes.Import: "another template ({% import %})",
    nodes.FromImport: "another template ({% from … import %})",
    nodes.Extends: "another template ({% extends %})",
    nodes.Block: "a block ({% block %})",
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.With: "{% with %}",
    nodes.FilterBlock: "a filter block ({% filter %})",
    nodes.Scope: "{% autoescape %}",
    nodes.ScopedEvalContextModifier: "{% autoescape %}",
    nodes.EvalContextModifier: "{% autoescape %}",
    nodes.Getattr: "an attribute (name.something)",
    nodes.Getitem: "an index (name[…])",
    nodes.Slice: "an index (name[…])",
    nodes.List: "a list",
    nodes.Tuple: "a list",
    nodes.Dict: "a dictionary",
    nodes.Add: "arithmetic (+)",
    nodes.Sub: "arithmetic (-)",
    nodes.Mul: "arithmetic (*)",
    nodes.Div: "arithmetic (/)",
    nodes.FloorDiv: "arithmetic (//)",
    nodes.Mod: "arithmetic (%)",
    nodes.Pow: "arithmetic (**)",
    nodes.Neg: "arithmetic (-)",
    nodes.Pos: "arithmetic (+)",
}
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
HINT = "templates take variables, the filters {filters} and {{% if %}} conditions".format(
    filters=", ".join(FILTERS)
)


class Refusal(Exception):
    """Why a template is refused: text goes after "the subject"/"the body"; hint: add HINT."""

    def __init__(self, text: str, hint: bool = False) -> None:
        super().__init__(text)
        self.text, self.hint = text, hint


def checked(env: Environment, source: str, variables: Collection[str]) -> nodes.Template:
    """Parse the source and return its tree if it only uses what templates may; else Refusal."""
    if len(source) > MAX_SOURCE_CHARS:
        raise Refusal(f"is too long (at most {MAX_SOURCE_CHARS:,} characters)")
    _count_tokens(env, source)
    try:
        tree = env.parse(source)
    except RecursionError:
        raise Refusal(f"is nested too deeply (at most {MAX_DEPTH} levels)") from None
    _Checker(variables).walk(tree)
    return tree


def _count_tokens(env: Environment, source: str) -> None:
    try:
        for number, _token in enumerate(env.lexer.tokeniter(source, None), 1):
            if number > MAX_TOKENS:
                raise Refusal(f"has too many parts (at most {MAX_TOKENS:,} tokens)")
    except ValueError as error:  # a number too long to read, say
        raise Refusal(f"cannot be read: {error}") from None


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
                raise Refusal(f"has too many parts (at most {MAX_NODES:,})")
            if depth > MAX_DEPTH:
                raise Refusal(
                    f"is nested too deeply on line {node.lineno} (at most {MAX_DEPTH} levels)"
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
        what = NOT_ALLOWED.get(kind, f"something templates cannot do ({kind.__name__})")
        line = f" on line {node.lineno}" if getattr(node, "lineno", None) else ""
        raise Refusal(f"uses {what}{line}, which is not allowed", hint=True)

    def _variable(self, node: nodes.Name) -> None:
        if node.name not in self.variables:
            known = ", ".join(self.variables)
            raise Refusal(
                f"uses an unknown variable on line {node.lineno}: '{node.name}' is "
                f"undefined (known: {known})"
            )
        self.uses += 1
        if self.uses > MAX_VARIABLE_USES:
            raise Refusal(f"uses variables too often (at most {MAX_VARIABLE_USES} times)")

    def _constant(self, node: nodes.Const, limit: int | None) -> None:
        value = node.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not abs(value) <= MAX_NUMBER:  # also NaN and infinity
                raise Refusal(f"uses a number larger than {MAX_NUMBER:,} on line {node.lineno}")
        elif isinstance(value, str) and limit is not None and len(value) > limit:
            raise Refusal(
                f"gives a text of more than {limit} characters on line {node.lineno} "
                "where only a short one fits"
            )
        elif value is not None and not isinstance(value, str | bool):
            raise Refusal(f"uses a value templates cannot hold on line {node.lineno}", hint=True)

    def _argument(self, node: nodes.Node, where: str) -> None:
        """A filter's argument: a short text, a number, true/false/none or a variable."""
        if type(node) is nodes.Name:
            self._variable(node)
        elif type(node) is nodes.Const:
            self._constant(node, limit=MAX_ARGUMENT_CHARS)
        else:
            raise Refusal(
                f"gives {where} something other than a text, a number or a variable "
                f"on line {node.lineno}",
                hint=True,
            )

    def _filter(self, node: nodes.Filter) -> list[nodes.Node]:
        if node.name not in FILTERS:
            raise Refusal(
                f"uses the filter {node.name} on line {node.lineno}, which is not allowed",
                hint=True,
            )
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise Refusal(
                f"passes *args or **kwargs to the filter {node.name} on line {node.lineno}",
                hint=True,
            )
        for argument in (*node.args, *(keyword.value for keyword in node.kwargs)):
            self._argument(argument, f"the filter {node.name}")
        self.nodes += len(node.args) + len(node.kwargs)
        return [node.node] if node.node is not None else []

    def _test(self, node: nodes.Test) -> list[nodes.Node]:
        if node.name not in TESTS or node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
            tests = ", ".join(TESTS)
            raise Refusal(
                f"uses the test 'is {node.name}' on line {node.lineno}; the tests "
                f"that exist are {tests}"
            )
        return [node.node]

    def _compare(self, node: nodes.Compare) -> list[nodes.Node]:
        """==, != between values; in / not in only against a written list of short texts."""
        for operand in node.ops:
            if operand.op not in COMPARISONS:
                allowed = ", ".join(COMPARISONS.values())
                raise Refusal(
                    f"compares with an operator other than {allowed} on line {node.lineno}"
                )
            if operand.op in ("in", "notin"):
                if type(operand.expr) not in (nodes.Tuple, nodes.List):
                    raise Refusal(
                        "uses 'in' with something other than a written list such as "
                        f"('done', 'live') on line {node.lineno}"
                    )
                for item in operand.expr.items:
                    if type(item) is not nodes.Const:
                        raise Refusal(
                            f"lists something other than texts after 'in' on line {node.lineno}"
                        )
                    self._constant(item, limit=MAX_ARGUMENT_CHARS)
                self.nodes += len(operand.expr.items)
        return [node.expr] + [o.expr for o in node.ops if o.op not in ("in", "notin")]
