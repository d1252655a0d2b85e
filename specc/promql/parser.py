"""A PromQL parser that accepts and refuses what Prometheus 3's does, in linear time.

Recursive descent with precedence climbing over the tokens of :mod:`specc.promql.lexer`,
following promql/parser/generated_parser.y (precedence, modifiers, duration
expressions) and parse.go's semantic checks (``checkAST``: types, arity, matchers),
with Prometheus's messages. Two bounds Prometheus does not have keep any input cheap:
:data:`MAX_LENGTH` characters and :data:`MAX_DEPTH` levels of nesting (of the text and
of the tree: a chain of 5,000 ``or`` is 5,000 levels deep), both checked before any
deeper work, so the parser never recurses past a few hundred frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from specc.promql import lexer as t
from specc.promql.functions import FUNCTIONS, Function
from specc.promql.lexer import Item, Lexer

#: Longest expression analysed (characters). Real rules stay far below; Prometheus has
#: no limit, but an agent must not spend its time on one hostile rule.
MAX_LENGTH = 32_768
#: Deepest nesting analysed, of parentheses, calls, unary signs and operator chains.
MAX_DEPTH = 100

_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "unless": 2,
    t.EQLC: 3,
    t.GTE: 3,
    t.GTR: 3,
    t.LSS: 3,
    t.LTE: 3,
    t.NEQ: 3,
    t.TRIM_UPPER: 3,
    t.TRIM_LOWER: 3,
    t.ADD: 4,
    t.SUB: 4,
    t.MUL: 5,
    t.DIV: 5,
    t.MOD: 5,
    "atan2": 5,
    t.POW: 6,
}
_COMPARISONS = frozenset({t.EQLC, t.NEQ, t.LTE, t.LSS, t.GTE, t.GTR})
_SET_OPERATORS = frozenset({"and", "or", "unless"})
_WITH_PARAM = frozenset({"topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio"})
_EXPERIMENTAL_AGGREGATORS = frozenset({"limitk", "limit_ratio"})
#: Tokens that may name a metric (generated_parser.y's metric_identifier).
_METRIC_IDENTIFIERS = frozenset(
    {"avg", "bottomk", "by", "count", "count_values", "fill", "fill_left", "fill_right"}
    | {"group", t.IDENTIFIER, "and", "or", "unless", "max", t.METRIC_IDENTIFIER, "min"}
    | {"offset", "quantile", "stddev", "stdvar", "sum", "topk", "without", "start", "end"}
    | {"limitk", "limit_ratio", "step", "range", "anchored", "smoothed", "max_of", "min_of"}
)
#: Tokens that may name a label in grouping clauses (maybe_label).
_MAYBE_LABELS = _METRIC_IDENTIFIERS | {
    "bool",
    "group_left",
    "group_right",
    "ignoring",
    "on",
    "atan2",
}
_MAX_DURATION_SECONDS = (1 << 63) / 1e9


class PromQLError(Exception):
    """A problem in an expression: Prometheus's message and where it starts (an offset)."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


# -- the tree ---------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Node:
    start: int
    end: int
    depth: int = 1

    def type(self) -> str:
        raise NotImplementedError


@dataclass(eq=False, slots=True)
class NumberLiteral(Node):
    value: float = 0.0

    def type(self) -> str:
        return "scalar"


@dataclass(eq=False, slots=True)
class StringLiteral(Node):
    value: str = ""

    def type(self) -> str:
        return "string"


@dataclass(eq=False, slots=True)
class Matcher:
    name: str
    op: str
    value: str
    start: int
    end: int
    regex: Any = None

    def matches_empty(self) -> bool:
        if self.op == t.EQL:
            return self.value == ""
        if self.op == t.NEQ:
            return self.value != ""
        hit = self.regex is not None and self.regex.fullmatch("") is not None
        return hit if self.op == t.EQL_REGEX else not hit


@dataclass(eq=False, slots=True)
class VectorSelector(Node):
    name: str = ""
    matchers: list[Matcher] = field(default_factory=list)
    offset: bool = False
    at: bool = False
    anchored: bool = False
    smoothed: bool = False
    bypass_empty_check: bool = False

    def type(self) -> str:
        return "vector"


@dataclass(eq=False, slots=True)
class MatrixSelector(Node):
    selector: Node | None = None

    def type(self) -> str:
        return "matrix"


@dataclass(eq=False, slots=True)
class SubqueryExpr(Node):
    expr: Node | None = None
    offset: bool = False
    at: bool = False

    def type(self) -> str:
        return "matrix"


@dataclass(eq=False, slots=True)
class ParenExpr(Node):
    expr: Node | None = None

    def type(self) -> str:
        assert self.expr is not None
        return self.expr.type()


@dataclass(eq=False, slots=True)
class UnaryExpr(Node):
    op: str = t.SUB
    expr: Node | None = None

    def type(self) -> str:
        assert self.expr is not None
        return self.expr.type()


@dataclass(eq=False, slots=True)
class BinaryExpr(Node):
    op: str = ""
    lhs: Node | None = None
    rhs: Node | None = None
    op_pos: int = 0
    return_bool: bool = False
    on: bool = False
    matching: list[str] | None = None
    #: "one-to-one", "many-to-one", "one-to-many" or "many-to-many".
    card: str = "one-to-one"
    include: list[str] = field(default_factory=list)
    fill: bool = False

    def type(self) -> str:
        assert self.lhs is not None and self.rhs is not None
        if self.lhs.type() == "scalar" and self.rhs.type() == "scalar":
            return "scalar"
        return "vector"


@dataclass(eq=False, slots=True)
class Call(Node):
    func: Function | None = None
    name: str = ""
    args: list[Node] = field(default_factory=list)

    def type(self) -> str:
        return self.func.return_type if self.func else "vector"


@dataclass(eq=False, slots=True)
class AggregateExpr(Node):
    op: str = ""
    expr: Node | None = None
    param: Node | None = None
    grouping: list[str] = field(default_factory=list)
    without: bool = False

    def type(self) -> str:
        return "vector"


@dataclass(eq=False, slots=True)
class DurationExpr(Node):
    """Arithmetic on durations in a range, step or offset (``[5m + step()]``)."""

    def type(self) -> str:
        return "scalar"


# -- the parser -------------------------------------------------------------------------


class _Stop(Exception):
    """Parsing cannot go on (a syntax error); the first recorded error is reported."""


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lexer = Lexer(text)
        self.errors: list[PromQLError] = []
        self.tok = Item(t.EOF, 0, "")
        self.last_closing = 0
        self.nesting = 0

    # -- tokens ---------------------------------------------------------------------------

    def _lex(self) -> Item:
        item = self.lexer.next_item()
        if item.typ == t.ERROR:
            self.errors.append(PromQLError(item.val, item.pos))
            raise _Stop
        return item

    def _advance(self) -> Item:
        item = self.tok
        if item.typ in (t.RIGHT_BRACE, t.RIGHT_PAREN, t.RIGHT_BRACKET, t.DURATION, t.NUMBER):
            self.last_closing = item.end
        self.tok = self._lex()
        return item

    def _error(self, message: str, pos: int) -> None:
        self.errors.append(PromQLError(message, pos))

    def _unexpected(self, context: str = "", expected: str = "") -> _Stop:
        message = "unexpected " + self.tok.desc()
        if context:
            message += " in " + context
        if expected:
            message += ", expected " + expected
        self._error(message, self.tok.pos)
        return _Stop()

    def _expect(self, typ: str, context: str, expected: str) -> Item:
        if self.tok.typ != typ:
            raise self._unexpected(context, expected)
        return self._advance()

    def _enter(self, pos: int) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            self._error(f"expression nests deeper than {MAX_DEPTH} levels (specc's limit)", pos)
            raise _Stop

    def _deep(self, node: Node, *children: Node | None) -> Node:
        node.depth = 1 + max((c.depth for c in children if c is not None), default=0)
        if node.depth > MAX_DEPTH:
            self._error(
                f"expression nests deeper than {MAX_DEPTH} levels (specc's limit)", node.start
            )
            raise _Stop
        return node

    # -- expressions ----------------------------------------------------------------------

    def parse(self) -> Node | None:
        try:
            self.tok = self._lex()
            if self.tok.typ == t.EOF:
                self._error("no expression found in input", 0)
                return None
            node = self._expr(0)
            if self.tok.typ != t.EOF:
                raise self._unexpected()
        except _Stop:
            return None
        if not self.errors:
            self._check(node)
        return node

    def _expr(self, min_prec: int) -> Node:
        lhs = self._unary()
        while True:
            op = self.tok.typ
            prec = _PRECEDENCE.get(op)
            if prec is None or prec < min_prec:
                return lhs
            op_item = self._advance()
            node = BinaryExpr(lhs.start, 0, op=op, lhs=lhs, op_pos=op_item.pos)
            self._bin_modifiers(node)
            # Every operator but ^ is left-associative.
            self._enter(op_item.pos)
            rhs = self._expr(prec if op == t.POW else prec + 1)
            self.nesting -= 1
            node.rhs, node.end = rhs, rhs.end
            if node.fill:
                self._error("binop fill modifiers are experimental and not enabled", node.start)
            lhs = self._deep(node, lhs, rhs)

    def _unary(self) -> Node:
        if self.tok.typ not in (t.ADD, t.SUB):
            return self._postfix(self._primary())
        op = self._advance()
        self._enter(op.pos)
        # `-a * b` is `(-a) * b`, `-a ^ b` is `-(a ^ b)`: the sign binds like `*`.
        operand = self._expr(_PRECEDENCE[t.POW])
        self.nesting -= 1
        if isinstance(operand, NumberLiteral):
            if op.typ == t.SUB:
                operand.value = -operand.value
            operand.start = op.pos
            return operand
        return self._deep(UnaryExpr(op.pos, operand.end, op=op.typ, expr=operand), operand)

    def _primary(self) -> Node:
        tok = self.tok
        typ = tok.typ
        if typ in (t.NUMBER, t.DURATION):
            return self._number_literal()
        if typ == t.STRING:
            self._advance()
            return StringLiteral(tok.pos, tok.end, value=self._unquote(tok))
        if typ == t.LEFT_PAREN:
            self._enter(tok.pos)
            self._advance()
            inner = self._expr(0)
            close = self._expect(t.RIGHT_PAREN, "", "")
            self.nesting -= 1
            return self._deep(ParenExpr(tok.pos, close.end, expr=inner), inner)
        if typ == t.LEFT_BRACE:
            return self._selector(None)
        if typ in t.AGGREGATORS:
            self._advance()
            if self.tok.typ in (t.LEFT_PAREN, "by", "without"):
                return self._aggregate(tok)
            return self._selector(tok)
        if typ == t.IDENTIFIER or typ in t.PREPROCESSORS:
            self._advance()
            if self.tok.typ == t.LEFT_PAREN:
                return self._call(tok)
            return self._selector(tok)
        if typ in _METRIC_IDENTIFIERS:
            self._advance()
            return self._selector(tok)
        raise self._unexpected()

    def _number_literal(self) -> NumberLiteral:
        tok = self._advance()
        value = self._duration(tok) if tok.typ == t.DURATION else self._number(tok)
        return NumberLiteral(tok.pos, tok.end, value=value)

    def _number(self, tok: Item) -> float:
        value = go_number(tok.val)
        if value is None:
            self._error(
                f"error parsing number: strconv.ParseFloat: parsing {_q(tok.val)}: invalid syntax",
                tok.pos,
            )
            return 0.0
        if math.isinf(value) and tok.val.lower() != "inf":
            self._error(
                f"error parsing number: strconv.ParseFloat: parsing {_q(tok.val)}: value out of range",
                tok.pos,
            )
        return value

    def _duration(self, tok: Item) -> float:
        try:
            return parse_duration(tok.val)
        except ValueError as exc:
            self._error(str(exc), tok.pos)
            return 0.0

    def _unquote(self, tok: Item) -> str:
        try:
            return go_unquote(tok.val)
        except ValueError:
            self._error(f"error unquoting string {_q(tok.val)}: invalid syntax", tok.pos)
            return ""

    # -- selectors ------------------------------------------------------------------------

    def _selector(self, name: Item | None) -> VectorSelector:
        start = name.pos if name else self.tok.pos
        end = name.end if name else start
        matchers: list[Matcher] = []
        if self.tok.typ == t.LEFT_BRACE:
            matchers, end = self._matchers()
        vs = VectorSelector(start, end, name=name.val if name else "", matchers=matchers)
        return vs

    def _matchers(self) -> tuple[list[Matcher], int]:
        self._advance()  # {
        out: list[Matcher] = []
        while self.tok.typ != t.RIGHT_BRACE:
            tok = self.tok
            if tok.typ == t.IDENTIFIER:
                label = self._advance()
                name = label.val
                if self.tok.typ not in (t.EQL, t.NEQ, t.EQL_REGEX, t.NEQ_REGEX):
                    raise self._unexpected("label matching", "label matching operator")
            elif tok.typ == t.STRING:
                label = self._advance()
                name = self._unquote(label)
                if self.tok.typ not in (t.EQL, t.NEQ, t.EQL_REGEX, t.NEQ_REGEX):
                    out.append(Matcher("__name__", t.EQL, name, label.pos, label.end))
                    if not self._list_next("label matching"):
                        break
                    continue
            else:
                raise self._unexpected("label matching", 'identifier or "}"')
            op = self._advance()
            if self.tok.typ != t.STRING:
                raise self._unexpected("label matching", "string")
            value_tok = self._advance()
            value = self._unquote(value_tok)
            matcher = Matcher(name, op.typ, value, label.pos, value_tok.end)
            if op.typ in (t.EQL_REGEX, t.NEQ_REGEX):
                matcher.regex = self._regex(value, label.pos)
                if matcher.regex is None:
                    continue
            out.append(matcher)
            if not self._list_next("label matching"):
                break
        close = self._expect(t.RIGHT_BRACE, "label matching", '"," or "}"')
        return out, close.end

    def _list_next(self, context: str) -> bool:
        """After a list item: consume a comma (True) or stop before "}" (False)."""
        if self.tok.typ == t.COMMA:
            self._advance()
            return True
        if self.tok.typ == t.RIGHT_BRACE:
            return False
        raise self._unexpected(context, '"," or "}"')

    def _regex(self, value: str, pos: int) -> Any:
        from specc.promql.regex import compile_regex

        try:
            return compile_regex(value)
        except ValueError as exc:
            self._error(str(exc), pos)
            return None

    # -- calls and aggregations -----------------------------------------------------------

    def _call(self, name: Item) -> Call:
        func = FUNCTIONS.get(name.val)
        if func is None:
            self._error(f"unknown function with name {_q(name.val)}", name.pos)
        elif func.experimental:
            self._error(f"function {_q(name.val)} is not enabled", name.pos)
        self._enter(name.pos)
        args = self._call_args()
        self.nesting -= 1
        call = Call(name.pos, self.last_closing, func=func, name=name.val, args=args)
        return self._deep(call, *args)  # type: ignore[return-value]

    def _call_args(self) -> list[Node]:
        self._advance()  # (
        args: list[Node] = []
        if self.tok.typ == t.RIGHT_PAREN:
            self._advance()
            return args
        while True:
            args.append(self._expr(0))
            if self.tok.typ == t.COMMA:
                comma = self._advance()
                if self.tok.typ == t.RIGHT_PAREN:
                    self._error("trailing commas not allowed in function call args", comma.pos)
                    self._advance()
                    return args
                continue
            if self.tok.typ == t.RIGHT_PAREN:
                self._advance()
                return args
            raise self._unexpected("function call", '"," or ")"')

    def _nested_args(self, op: Item) -> list[Node]:
        self._enter(op.pos)
        args = self._call_args()
        self.nesting -= 1
        return args

    def _aggregate(self, op: Item) -> AggregateExpr:
        node = AggregateExpr(op.pos, 0, op=op.typ)
        if self.tok.typ in ("by", "without"):
            self._grouping_modifier(node)
            if self.tok.typ != t.LEFT_PAREN:
                raise self._unexpected("aggregation", "")
            args = self._nested_args(op)
        else:
            args = self._nested_args(op)
            if self.tok.typ in ("by", "without"):
                self._grouping_modifier(node)
        node.end = self.last_closing
        if not args:
            self._error("no arguments for aggregate expression provided", op.pos)
            return node
        wanted = 1
        if op.typ in _WITH_PARAM:
            if op.typ in _EXPERIMENTAL_AGGREGATORS:
                self._error(
                    f"{op.typ}() is experimental and must be enabled with "
                    "--enable-feature=promql-experimental-functions",
                    op.pos,
                )
                return node
            wanted = 2
            node.param = args[0]
        if len(args) != wanted:
            self._error(
                "wrong number of arguments for aggregate expression provided, "
                f"expected {wanted}, got {len(args)}",
                op.pos,
            )
            return node
        node.expr = args[-1]
        return self._deep(node, *args)  # type: ignore[return-value]

    def _grouping_modifier(self, node: AggregateExpr) -> None:
        node.without = self._advance().typ == "without"
        node.grouping = self._grouping_labels()

    def _grouping_labels(self) -> list[str]:
        if self.tok.typ != t.LEFT_PAREN:
            raise self._unexpected("grouping opts", '"("')
        self._advance()
        labels: list[str] = []
        while self.tok.typ != t.RIGHT_PAREN:
            tok = self.tok
            if tok.typ in _MAYBE_LABELS:
                labels.append(self._advance().val)
            elif tok.typ == t.STRING:
                value = self._unquote(self._advance())
                if not value:
                    self._error(f"invalid label name for grouping: {_q(value)}", tok.pos)
                labels.append(value)
            else:
                raise self._unexpected("grouping opts", "label")
            if self.tok.typ == t.COMMA:
                self._advance()
                continue
            if self.tok.typ != t.RIGHT_PAREN:
                raise self._unexpected("grouping opts", '"," or ")"')
        self._advance()
        return labels

    def _bin_modifiers(self, node: BinaryExpr) -> None:
        if self.tok.typ == "bool":
            self._advance()
            node.return_bool = True
        if self.tok.typ in ("on", "ignoring"):
            node.on = self._advance().typ == "on"
            node.matching = self._grouping_labels()
            if self.tok.typ in ("group_left", "group_right"):
                side = self._advance().typ
                node.card = "many-to-one" if side == "group_left" else "one-to-many"
                if self.tok.typ == t.LEFT_PAREN:
                    node.include = self._grouping_labels()
        first = None
        while self.tok.typ in ("fill", "fill_left", "fill_right"):
            kind = self._advance().typ
            if first is not None and (kind == "fill" or first == "fill" or kind == first):
                raise self._unexpected()
            first = kind
            self._fill_value()
            node.fill = True

    def _fill_value(self) -> None:
        self._expect(t.LEFT_PAREN, "", "")
        if self.tok.typ in (t.ADD, t.SUB):
            self._advance()
        if self.tok.typ not in (t.NUMBER, t.DURATION):
            raise self._unexpected()
        self._number_literal()
        self._expect(t.RIGHT_PAREN, "", "")

    # -- postfix: ranges, subqueries, offset, @, anchored, smoothed ------------------------

    def _postfix(self, node: Node) -> Node:
        while True:
            typ = self.tok.typ
            if typ == t.LEFT_BRACKET:
                node = self._range(node)
            elif typ == "offset":
                self._advance()
                self._offset(node)
            elif typ == t.AT:
                self._advance()
                self._at(node)
            elif typ in ("anchored", "smoothed"):
                self._advance()
                self._anchor(node, typ)
            else:
                return node

    def _range(self, node: Node) -> Node:
        open_ = self._advance()
        if self.tok.typ not in (
            t.NUMBER,
            t.DURATION,
            t.ADD,
            t.SUB,
            t.LEFT_PAREN,
        ) and self.tok.typ not in (
            "step",
            "range",
            "max_of",
            "min_of",
        ):
            raise self._unexpected(
                "subquery or range selector", "number, duration, step(), or range()"
            )
        self._positive_duration()
        if self.tok.typ == t.RIGHT_BRACKET:
            close = self._advance()
            problem = ""
            if not isinstance(node, VectorSelector):
                problem = "ranges only allowed for vector selectors"
            elif node.offset:
                problem = "no offset modifiers allowed before range"
            elif node.at:
                problem = "no @ modifiers allowed before range"
            if problem:
                self._error(problem, open_.pos)
            matrix = MatrixSelector(node.start, close.end, selector=node)
            return self._deep(matrix, node)
        if self.tok.typ != t.COLON:
            raise self._unexpected("subquery or range", '":" or "]"')
        self._advance()
        if self.tok.typ != t.RIGHT_BRACKET:
            if self.tok.typ not in (
                t.NUMBER,
                t.DURATION,
                t.ADD,
                t.SUB,
                t.LEFT_PAREN,
            ) and self.tok.typ not in (
                "step",
                "range",
                "max_of",
                "min_of",
            ):
                raise self._unexpected(
                    "subquery selector", 'number, duration, step(), range(), or "]"'
                )
            self._positive_duration()
            if self.tok.typ != t.RIGHT_BRACKET:
                raise self._unexpected("subquery selector", '"]"')
        close = self._advance()
        return self._deep(SubqueryExpr(node.start, close.end, expr=node), node)

    def _positive_duration(self) -> None:
        node = self._duration_expr(0)
        if isinstance(node, NumberLiteral) and node.value <= 0:
            self._error("duration must be greater than 0", node.start)

    def _duration_expr(self, min_prec: int) -> Node:
        lhs = self._duration_unary()
        while True:
            op = self.tok.typ
            prec = _PRECEDENCE.get(op)
            if (
                op not in (t.ADD, t.SUB, t.MUL, t.DIV, t.MOD, t.POW)
                or prec is None
                or prec < min_prec
            ):
                return lhs
            op_item = self._advance()
            self._enter(op_item.pos)
            rhs = self._duration_expr(prec if op == t.POW else prec + 1)
            self.nesting -= 1
            if op in (t.DIV, t.MOD) and isinstance(rhs, NumberLiteral) and rhs.value == 0:
                self._error("division by zero" if op == t.DIV else "modulo by zero", op_item.pos)
            lhs = self._deep(DurationExpr(lhs.start, rhs.end), lhs, rhs)

    def _duration_unary(self) -> Node:
        tok = self.tok
        if tok.typ in (t.ADD, t.SUB):
            self._advance()
            self._enter(tok.pos)
            operand = self._duration_expr(_PRECEDENCE[t.POW])
            self.nesting -= 1
            if isinstance(operand, NumberLiteral):
                if tok.typ == t.SUB:
                    operand.value = -operand.value
                if abs(operand.value) > _MAX_DURATION_SECONDS:
                    self._error("duration out of range", tok.pos)
                operand.start = tok.pos
                return operand
            return self._deep(DurationExpr(tok.pos, operand.end), operand)
        if tok.typ in (t.NUMBER, t.DURATION):
            node = self._number_literal()
            if abs(node.value) > _MAX_DURATION_SECONDS:
                self._error("duration out of range", node.start)
            return node
        if tok.typ in ("step", "range"):
            self._advance()
            self._expect(t.LEFT_PAREN, "", "")
            close = self._expect(t.RIGHT_PAREN, "", "")
            return DurationExpr(tok.pos, close.end)
        if tok.typ in ("max_of", "min_of"):
            self._advance()
            self._expect(t.LEFT_PAREN, "", "")
            self._enter(tok.pos)
            a = self._duration_expr(0)
            self._expect(t.COMMA, "", "")
            b = self._duration_expr(0)
            self.nesting -= 1
            close = self._expect(t.RIGHT_PAREN, "", "")
            return self._deep(DurationExpr(tok.pos, close.end), a, b)
        if tok.typ == t.LEFT_PAREN:
            self._advance()
            self._enter(tok.pos)
            inner = self._duration_expr(0)
            self.nesting -= 1
            close = self._expect(t.RIGHT_PAREN, "", "")
            return self._deep(DurationExpr(tok.pos, close.end), inner)
        raise self._unexpected("duration expression", "")

    def _offset(self, node: Node) -> None:
        tok = self.tok
        if tok.typ not in (t.NUMBER, t.DURATION, t.ADD, t.SUB, t.LEFT_PAREN) and tok.typ not in (
            "step",
            "range",
            "max_of",
            "min_of",
        ):
            raise self._unexpected("offset", "number, duration, step(), or range()")
        if tok.typ in (t.NUMBER, t.DURATION, t.ADD, t.SUB):
            self._offset_literal()
        else:
            self._duration_unary()
        target = node
        if isinstance(node, MatrixSelector):
            if not isinstance(node.selector, VectorSelector):
                self._error("ranges only allowed for vector selectors", node.start)
                return
            target = node.selector
        if not isinstance(target, VectorSelector | SubqueryExpr):
            self._error(
                "offset modifier must be preceded by an instant vector selector or range "
                "vector selector or a subquery",
                node.start,
            )
            return
        if target.offset:
            self._error("offset may not be set multiple times", node.start)
        target.offset = True
        node.end = self.last_closing

    def _offset_literal(self) -> None:
        """A signed number or duration: `offset -5m ^ 2` is `(x offset -5m) ^ 2`."""
        sign = None
        if self.tok.typ in (t.ADD, t.SUB):
            sign = self._advance()
            if self.tok.typ not in (t.NUMBER, t.DURATION):
                if self.tok.typ in ("step", "range", "max_of", "min_of", t.LEFT_PAREN):
                    self._duration_unary()
                    return
                raise self._unexpected("offset", "number, duration, step(), or range()")
        lit = self._number_literal()
        if abs(lit.value) > _MAX_DURATION_SECONDS:
            self._error("duration out of range", sign.pos if sign else lit.start)

    def _at(self, node: Node) -> None:
        tok = self.tok
        if tok.typ in ("start", "end"):
            self._advance()
            self._expect(t.LEFT_PAREN, "@", "timestamp")
            self._expect(t.RIGHT_PAREN, "@", "timestamp")
            self._set_at(node)
            return
        sign = 1.0
        if tok.typ in (t.ADD, t.SUB):
            sign = -1.0 if self._advance().typ == t.SUB else 1.0
        if self.tok.typ not in (t.NUMBER, t.DURATION):
            raise self._unexpected("@", "timestamp")
        lit = self._number_literal()
        ts = sign * lit.value
        if math.isinf(ts) or math.isnan(ts) or abs(ts) >= 2.0**63:
            shown = (
                "NaN"
                if math.isnan(ts)
                else ("+Inf" if ts > 0 else "-Inf")
                if math.isinf(ts)
                else f"{ts:f}"
            )
            self._error(f"timestamp out of bounds for @ modifier: {shown}", node.start)
        self._set_at(node)

    def _set_at(self, node: Node) -> None:
        target = node
        if isinstance(node, MatrixSelector):
            if not isinstance(node.selector, VectorSelector):
                self._error("ranges only allowed for vector selectors", node.start)
                return
            target = node.selector
        if not isinstance(target, VectorSelector | SubqueryExpr):
            self._error(
                "@ modifier must be preceded by an instant vector selector or range vector "
                "selector or a subquery",
                node.start,
            )
            return
        if target.at:
            self._error("@ <timestamp> may not be set multiple times", node.start)
            return
        target.at = True
        node.end = self.last_closing

    def _anchor(self, node: Node, kind: str) -> None:
        if isinstance(node, SubqueryExpr):
            self._error(f"{kind} modifier is not supported for subqueries", node.start)
            return
        target = node.selector if isinstance(node, MatrixSelector) else node
        if not isinstance(target, VectorSelector):
            if not isinstance(node, MatrixSelector):
                self._error(f"{kind} modifier not implemented", node.start)
            return
        setattr(target, kind, True)
        if target.anchored and target.smoothed:
            self._error("anchored and smoothed modifiers cannot be used together", node.start)

    # -- checkAST -------------------------------------------------------------------------

    def _expect_type(self, node: Node | None, want: str, context: str) -> None:
        if node is None:
            return
        got = self._check(node)
        if got != want:
            self._error(f"expected type {_doc(want)} in {context}, got {_doc(got)}", node.start)

    def _check(self, node: Node) -> str:
        """Type-check ``node`` and below (parse.go's checkAST); return its type."""
        typ = node.type()
        if isinstance(node, AggregateExpr):
            self._expect_type(node.expr, "vector", "aggregation expression")
            if node.op in ("topk", "bottomk", "quantile", "limitk", "limit_ratio"):
                self._expect_type(node.param, "scalar", "aggregation parameter")
            if node.op == "count_values":
                self._expect_type(node.param, "string", "aggregation parameter")
        elif isinstance(node, BinaryExpr):
            self._check_binary(node)
        elif isinstance(node, Call):
            self._check_call(node)
        elif isinstance(node, ParenExpr):
            assert node.expr is not None
            self._check(node.expr)
        elif isinstance(node, UnaryExpr):
            assert node.expr is not None
            inner = self._check(node.expr)
            if inner not in ("scalar", "vector"):
                self._error(
                    "unary expression only allowed on expressions of type scalar or instant "
                    f'vector, got "{_doc(inner)}"',
                    node.start,
                )
        elif isinstance(node, SubqueryExpr):
            assert node.expr is not None
            inner = self._check(node.expr)
            if inner != "vector":
                self._error(
                    f"subquery is only allowed on instant vector, got {inner} instead", node.start
                )
        elif isinstance(node, MatrixSelector):
            assert node.selector is not None
            self._check(node.selector)
        elif isinstance(node, VectorSelector):
            self._check_selector(node)
        return typ

    def _check_binary(self, n: BinaryExpr) -> None:
        assert n.lhs is not None and n.rhs is not None
        lt = self._check(n.lhs)
        rt = self._check(n.rhs)
        if n.return_bool and n.op not in _COMPARISONS:
            self._error("bool modifier can only be used on comparison operators", n.op_pos)
        if n.op in _COMPARISONS and not n.return_bool and lt == rt == "scalar":
            self._error("comparisons between scalars must use BOOL modifier", n.op_pos)
        if n.op in _SET_OPERATORS and n.card == "one-to-one":
            n.card = "many-to-many"
        if n.on and n.matching:
            for label in n.matching:
                if label in n.include:
                    self._error(
                        f"label {_q(label)} must not occur in ON and GROUP clause at once",
                        n.op_pos,
                    )
        if lt not in ("scalar", "vector"):
            self._error(
                "binary expression must contain only scalar and instant vector types", n.lhs.start
            )
        if rt not in ("scalar", "vector"):
            self._error(
                "binary expression must contain only scalar and instant vector types", n.rhs.start
            )
        if lt != "vector" or rt != "vector":
            if n.matching:
                self._error("vector matching only allowed between instant vectors", n.start)
        elif n.op in _SET_OPERATORS:
            if n.card in ("one-to-many", "many-to-one"):
                self._error(f"no grouping allowed for {_q(n.op)} operation", n.start)
            if n.card != "many-to-many":
                self._error("set operations must always be many-to-many", n.start)
        if "scalar" in (lt, rt) and n.op in _SET_OPERATORS:
            self._error(f"set operator {_q(n.op)} not allowed in binary scalar expression", n.start)

    def _check_call(self, n: Call) -> None:
        func = n.func
        if func is None:
            return
        nargs = len(func.arg_types)
        if func.variadic == 0:
            if nargs != len(n.args):
                self._error(
                    f"expected {nargs} argument(s) in call to {_q(func.name)}, got {len(n.args)}",
                    n.start,
                )
        else:
            least = nargs - 1
            if least > len(n.args):
                self._error(
                    f"expected at least {least} argument(s) in call to {_q(func.name)}, "
                    f"got {len(n.args)}",
                    n.start,
                )
            elif func.variadic > 0 and least + func.variadic < len(n.args):
                self._error(
                    f"expected at most {least + func.variadic} argument(s) in call to "
                    f"{_q(func.name)}, got {len(n.args)}",
                    n.start,
                )
        for i, arg in enumerate(n.args):
            if i >= nargs:
                if func.variadic == 0:
                    break
                i = nargs - 1
            got = self._check(arg)
            if got != func.arg_types[i]:
                self._error(
                    f"expected type {_doc(func.arg_types[i])} in call to function "
                    f"{_q(func.name)}, got {_doc(got)}",
                    arg.start,
                )

    def _check_selector(self, n: VectorSelector) -> None:
        if n.name:
            for m in n.matchers:
                if m.name == "__name__":
                    self._error(
                        f"metric name must not be set twice: {_q(n.name)} or {_q(m.value)}",
                        n.start,
                    )
            return
        if n.bypass_empty_check:
            return
        if not any(not m.matches_empty() for m in n.matchers):
            self._error("vector selector must contain at least one non-empty matcher", n.start)


def _doc(value_type: str) -> str:
    """Return a value type as Prometheus documents it."""
    return {"vector": "instant vector", "matrix": "range vector"}.get(value_type, value_type)


def _q(text: str) -> str:
    return t._go_quote(text)


# -- literals as Go reads them ----------------------------------------------------------

_UNITS = {"ms": (0.001, 7), "s": (1, 6), "m": (60, 5), "h": (3600, 4), "d": (86400, 3)}
_UNITS |= {"w": (604800, 2), "y": (31536000, 1)}


def parse_duration(text: str) -> float:
    """Return the seconds of a Prometheus duration (model.ParseDuration); ValueError if bad."""
    if text == "0":
        return 0.0
    if not text:
        raise ValueError("empty duration string")
    total = 0.0
    last = 0
    rest = text
    while rest:
        i = 0
        while i < len(rest) and rest[i].isdigit() and rest[i].isascii():
            i += 1
        if i == 0:
            raise ValueError(f"not a valid duration string: {_q(text)}")
        number = int(rest[:i])
        rest = rest[i:]
        j = 0
        while j < len(rest) and not (rest[j].isdigit() and rest[j].isascii()):
            j += 1
        unit = rest[:j]
        rest = rest[j:]
        if not unit:
            raise ValueError(f"not a valid duration string: {_q(text)}")
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {_q(unit)} in duration {_q(text)}")
        seconds, order = _UNITS[unit]
        if order <= last:
            raise ValueError(f"not a valid duration string: {_q(text)}")
        last = order
        total += number * seconds
        if total > _MAX_DURATION_SECONDS:
            raise ValueError("duration out of range")
    return total


def _underscores_ok(s: str) -> bool:
    """Go's strconv.underscoreOK: underscores only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i, saw, hexa = 2, "0", s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        if c.isdigit() or (hexa and c.lower() in "abcdef"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def go_number(text: str) -> float | None:
    """Return ``text`` as strconv.ParseInt(text, 0, 64), else ParseFloat, read it; None if neither."""
    low = text.lower()
    if low in ("inf", "+inf", "infinity"):
        return math.inf
    if low == "nan":
        return math.nan
    if "_" in text and not _underscores_ok(text):
        return None
    plain = text.replace("_", "")
    base = 10
    digits = plain
    if len(plain) >= 2 and plain[0] == "0" and plain[1] in "xXoObB":
        base = {"x": 16, "o": 8, "b": 2}[plain[1].lower()]
        digits = plain[2:]
    elif len(plain) > 1 and plain[0] == "0" and plain.isdigit():
        base, digits = 8, plain[1:]
    try:
        value = int(digits, base)
        if value < 1 << 63:
            return float(value)
    except ValueError:
        pass
    if base == 16:
        return None  # a hexadecimal float needs a 'p' exponent, which the lexer never lets in
    if base in (2, 8) and plain[1:2].lower() in ("b", "o"):
        return None
    try:
        return float(plain)
    except ValueError:
        return None


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def go_unquote(text: str) -> str:
    """Return the value of a PromQL string literal (Go's quoting rules); ValueError if bad."""
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "\"'`":
        raise ValueError(text)
    quote, body = text[0], text[1:-1]
    if quote == "`":
        if "`" in body:
            raise ValueError(text)
        return body
    if "\n" in body:
        raise ValueError(text)
    if "\\" not in body:
        if quote in body:
            raise ValueError(text)
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == quote:
            raise ValueError(text)
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1 : i + 2]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in ("\\", quote):
            out.append(e)
            i += 2
        elif e in ("x", "u", "U"):
            n = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i + 2 : i + 2 + n]
            if len(digits) != n or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError(text)
            value = int(digits, 16)
            if e != "x" and (value > 0x10FFFF or 0xD800 <= value < 0xE000):
                raise ValueError(text)
            out.append(chr(value))
            i += 2 + n
        elif e and e in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise ValueError(text)
            value = int(digits, 8)
            if value > 255:
                raise ValueError(text)
            out.append(chr(value))
            i += 4
        else:
            raise ValueError(text)
    return "".join(out)


def parse(text: str) -> tuple[Node | None, list[PromQLError]]:
    """Return the tree of ``text`` and its problems (the first is the one Prometheus reports)."""
    if len(text) > MAX_LENGTH:
        return None, [
            PromQLError(
                f"expression is {len(text)} characters long, over specc's limit of {MAX_LENGTH}",
                MAX_LENGTH,
            )
        ]
    parser = Parser(text)
    try:
        tree = parser.parse()
    except RecursionError:
        # Only when called from a deep stack already: MAX_DEPTH keeps the parser's own shallow.
        return None, [PromQLError("expression nests too deeply to analyse", 0)]
    return tree, parser.errors
