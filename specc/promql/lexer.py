"""The PromQL lexer, state for state as Prometheus 3's (promql/parser/lex.go).

One pass over the text, each character looked at a bounded number of times: linear in
the length of the expression. Positions are offsets into the text (code points).
"""

from __future__ import annotations

from dataclasses import dataclass

# Token types. Keywords, operators and aggregators carry their own spelling.
EOF = "EOF"
ERROR = "ERROR"
COMMENT = "COMMENT"
IDENTIFIER = "IDENTIFIER"
METRIC_IDENTIFIER = "METRIC_IDENTIFIER"
NUMBER = "NUMBER"
DURATION = "DURATION"
STRING = "STRING"
LEFT_PAREN = "("
RIGHT_PAREN = ")"
LEFT_BRACE = "{"
RIGHT_BRACE = "}"
LEFT_BRACKET = "["
RIGHT_BRACKET = "]"
COMMA = ","
COLON = ":"
EQL = "="
EQLC = "=="
NEQ = "!="
EQL_REGEX = "=~"
NEQ_REGEX = "!~"
LSS = "<"
LTE = "<="
GTR = ">"
GTE = ">="
TRIM_UPPER = "</"
TRIM_LOWER = ">/"
ADD = "+"
SUB = "-"
MUL = "*"
DIV = "/"
MOD = "%"
POW = "^"
AT = "@"

OPERATORS = frozenset(
    {ADD, DIV, EQLC, EQL_REGEX, GTE, GTR, TRIM_UPPER, TRIM_LOWER, "and", "or", LSS, LTE}
    | {"unless", MOD, MUL, NEQ, NEQ_REGEX, POW, SUB, AT, "atan2"}
)
AGGREGATORS = frozenset(
    {"avg", "bottomk", "count", "count_values", "group", "max", "min", "quantile"}
    | {"stddev", "stdvar", "sum", "topk", "limitk", "limit_ratio"}
)
KEYWORDS = frozenset(
    {"bool", "by", "group_left", "group_right", "fill", "fill_left", "fill_right"}
    | {"ignoring", "offset", "smoothed", "anchored", "on", "without"}
)
PREPROCESSORS = frozenset({"start", "end", "step", "range", "max_of", "min_of"})
#: Words the lexer turns into tokens of their own (lower-cased); the rest are names.
KEY = frozenset({"and", "or", "unless", "atan2"} | AGGREGATORS | KEYWORDS | PREPROCESSORS)
_DURATION_KEYWORDS = frozenset({"step", "range", "max_of", "min_of"})

_SPACE = " \t\n\r"
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"


@dataclass(frozen=True, slots=True)
class Item:
    """One token: its type, offset and text (for ERROR, the message)."""

    typ: str
    pos: int
    val: str

    @property
    def end(self) -> int:
        return self.pos + len(self.val)

    def desc(self) -> str:
        """Describe the token as Prometheus's error messages do."""
        t = self.typ
        if t == EOF:
            return "end of input"
        if t in (IDENTIFIER, METRIC_IDENTIFIER):
            kind = "identifier" if t == IDENTIFIER else "metric identifier"
            return f"{kind} {_go_quote(self.val)}"
        if t in (NUMBER, DURATION, STRING):
            return f"{t.lower()} {_go_quote(self.val, 10)}"
        if t in KEYWORDS:
            return f"<{self.val}>"
        if t in OPERATORS:
            return f"<op:{self.val}>"
        if t in AGGREGATORS:
            return f"<aggr:{self.val}>"
        return _go_quote(t)


def _go_quote(text: str, limit: int = 0) -> str:
    """Return ``text`` quoted like Go's %q (``%.10q...`` when ``limit`` cuts it)."""
    cut = limit and len(text) > limit
    body = text[:limit] if cut else text
    out = '"' + body.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return out + "..." if cut else out


def _alpha(c: str) -> bool:
    return c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z")


def _alnum(c: str) -> bool:
    return _alpha(c) or ("0" <= c <= "9")


class Lexer:
    """Yields the tokens of one PromQL expression; an ERROR token ends the stream."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.brace_open = False
        self.bracket_open = False
        self.got_colon = False
        self.got_duration = False
        #: Inside brackets after a number, Prometheus's lexer is back in its statement
        #: state (lexNumberOrDuration returns lexStatements): its messages differ.
        self.bracket_statements = False
        self.done = False

    # -- helpers ------------------------------------------------------------------------

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _next(self) -> str:
        if self.pos >= len(self.text):
            self.pos += 1  # so that backup() after eof is symmetric
            return ""
        c = self.text[self.pos]
        self.pos += 1
        return c

    def _backup(self) -> None:
        self.pos -= 1

    def _accept(self, valid: str) -> bool:
        c = self._next()
        if c and c in valid:
            return True
        self._backup()
        return False

    def _emit(self, typ: str) -> Item:
        item = Item(typ, self.start, self.text[self.start : self.pos])
        self.start = self.pos
        return item

    def _error(self, message: str) -> Item:
        self.done = True
        return Item(ERROR, self.start, message)

    def _skip_spaces(self) -> None:
        while self._peek() and self._peek() in _SPACE:
            self.pos += 1
        self.start = self.pos

    # -- the states -----------------------------------------------------------------------

    def next_item(self) -> Item:
        """Return the next token (comments skipped); EOF or ERROR at the end."""
        while True:
            if self.done:
                return Item(EOF, len(self.text), "")
            if self.brace_open:
                item = self._inside_braces()
            elif self.bracket_open and not self.bracket_statements:
                item = self._duration_expr()
            else:
                item = self._statements()
            if item is None:
                continue
            if item.typ == COMMENT:
                continue
            if item.typ == EOF:
                self.done = True
            return item

    def _statements(self) -> Item | None:
        if self.text.startswith("#", self.pos):
            return self._comment()
        c = self._next()
        if self.bracket_open and c and (_alpha(c) or c in ":[]"):
            return self._statements_in_brackets(c)
        if c == "":
            self._backup()
            self.start = self.pos
            if self.paren_depth != 0:
                return self._error("unclosed left parenthesis")
            if self.bracket_open:
                return self._error("unclosed left bracket")
            return self._emit(EOF)
        if c in _SPACE:
            self._skip_spaces()
            return None
        if c in ",*/%+-^@":
            return self._emit(c)
        if c == "=":
            t = self._peek()
            if t == "=":
                self._next()
                return self._emit(EQLC)
            if t == "~":
                return self._error(f"unexpected character after '=': {_go_char(t)}")
            return self._emit(EQL)
        if c == "!":
            t = self._next()
            if t != "=":
                return self._error(f"unexpected character after '!': {_go_char(t)}")
            return self._emit(NEQ)
        if c in "<>":
            t = self._peek()
            if t in ("=", "/"):
                self._next()
                return self._emit(c + t)
            return self._emit(c)
        if ("0" <= c <= "9") or (c == "." and "0" <= self._peek() <= "9" and self._peek()):
            self._backup()
            return self._number_or_duration()
        if c in "\"'":
            return self._string(c)
        if c == "`":
            return self._raw_string()
        if _alpha(c) or c == ":":
            self._backup()
            return self._keyword_or_identifier()
        if c == "(":
            self.paren_depth += 1
            return self._emit(LEFT_PAREN)
        if c == ")":
            item = self._emit(RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                return self._error("unexpected right parenthesis ')'")
            return item
        if c == "{":
            self.brace_open = True
            return self._emit(LEFT_BRACE)
        if c == "[":
            self.got_colon = False
            self.got_duration = False
            self.bracket_statements = False
            item = self._emit(LEFT_BRACKET)
            self._skip_spaces()
            self.bracket_open = True
            return item
        if c == "]":
            return self._error("unexpected right bracket ']'")
        return self._error(f"unexpected character: {_go_char(c)}")

    def _statements_in_brackets(self, c: str) -> Item | None:
        if c == ":":
            if self.got_colon:
                return self._error("unexpected colon ':'")
            self.got_colon = True
            return self._emit(COLON)
        if c == "]":
            self.bracket_open = self.bracket_statements = self.got_colon = False
            return self._emit(RIGHT_BRACKET)
        if c == "[":
            return self._error("unexpected left bracket '['")
        if c.lower() in "srm":
            word = self._duration_keyword()
            if word is not None:
                return word
        return self._error(f"unexpected character: {_go_char(c)}, expected ':'")

    def _comment(self) -> Item:
        while self.pos < len(self.text) and self.text[self.pos] not in "\r\n":
            self.pos += 1
        return self._emit(COMMENT)

    def _inside_braces(self) -> Item | None:
        if self.text.startswith("#", self.pos):
            return self._comment()
        c = self._next()
        if c == "":
            self._backup()
            return self._error("unexpected end of input inside braces")
        if c in _SPACE:
            self._skip_spaces()
            return None
        if _alpha(c):
            while _alnum(self._peek()) and self._peek():
                self.pos += 1
            return self._emit(IDENTIFIER)
        if c == ",":
            return self._emit(COMMA)
        if c in "\"'":
            return self._string(c)
        if c == "`":
            return self._raw_string()
        if c == "=":
            if self._peek() == "~":
                self._next()
                return self._emit(EQL_REGEX)
            return self._emit(EQL)
        if c == "!":
            t = self._next()
            if t == "~":
                return self._emit(NEQ_REGEX)
            if t == "=":
                return self._emit(NEQ)
            return self._error(f"unexpected character after '!' inside braces: {_go_char(t)}")
        if c == "{":
            return self._error("unexpected left brace '{'")
        if c == "}":
            self.brace_open = False
            return self._emit(RIGHT_BRACE)
        return self._error(f"unexpected character inside braces: {_go_char(c)}")

    def _duration_expr(self) -> Item | None:
        c = self._next()
        if c == "":
            self._backup()
            return self._error("unexpected end of input in duration expression")
        if c == "]":
            self.bracket_open = False
            self.got_colon = False
            return self._emit(RIGHT_BRACKET)
        if c == ":":
            item = self._emit(COLON)
            if not self.got_duration:
                return self._error("unexpected colon before duration in duration expression")
            if self.got_colon:
                return self._error("unexpected repeated colon in duration expression")
            self.got_colon = True
            return item
        if c == "(":
            self.paren_depth += 1
            return self._emit(LEFT_PAREN)
        if c == ")":
            item = self._emit(RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                return self._error("unexpected right parenthesis ')'")
            return item
        if c in _SPACE:
            self._skip_spaces()
            return None
        if c in "+-*/%^,":
            return self._emit(c)
        if c.lower() in "srm":
            word = self._duration_keyword()
            if word is not None:
                self.got_duration = True
                return word
            return self._error(f"unexpected character in duration expression: {_go_char(c)}")
        if ("0" <= c <= "9") or (c == "." and "0" <= self._peek() <= "9" and self._peek()):
            self._backup()
            self.got_duration = True
            self.bracket_statements = True
            return self._number_or_duration()
        return self._error(f"unexpected character in duration expression: {_go_char(c)}")

    def _duration_keyword(self) -> Item | None:
        while _alpha(self._peek()) and self._peek():
            self.pos += 1
        word = self.text[self.start : self.pos].lower()
        if word in _DURATION_KEYWORDS:
            return self._emit(word)
        return None

    def _string(self, quote: str) -> Item:
        while True:
            c = self._next()
            if c == "\\":
                problem = self._escape(quote)
                if problem:
                    return self._error(problem)
                continue
            if c in ("", "\n"):
                return self._error("unterminated quoted string")
            if c == quote:
                return self._emit(STRING)

    def _escape(self, quote: str) -> str:
        """Consume one escape sequence; return the problem with it, if any."""
        c = self._next()
        if c in ("a", "b", "f", "n", "r", "t", "v", "\\", quote):
            return ""
        if c == "":
            return "escape sequence not terminated"
        if c in "01234567":
            n, base, limit = 3, 8, 255
        elif c in "xuU":
            n, base, limit = {"x": (2, 16, 255), "u": (4, 16, 0x10FFFF), "U": (8, 16, 0x10FFFF)}[c]
            c = self._next()
        else:
            return f"unknown escape sequence {_go_rune(c)}"
        value = 0
        while n > 0:
            digit = int(c, 16) if c and c in _HEX else 16
            if digit >= base:
                if c == "":
                    return "escape sequence not terminated"
                return f"illegal character {_go_rune(c)} in escape sequence"
            value = value * base + digit
            n -= 1
            if n > 0:
                c = self._next()
        if value > limit or 0xD800 <= value < 0xE000:
            return "escape sequence is an invalid Unicode code point"
        return ""

    def _raw_string(self) -> Item:
        end = self.text.find("`", self.pos)
        if end < 0:
            return self._error("unterminated raw string")
        self.pos = end + 1
        return self._emit(STRING)

    def _keyword_or_identifier(self) -> Item:
        while self.pos < len(self.text) and (
            _alnum(self.text[self.pos]) or self.text[self.pos] == ":"
        ):
            self.pos += 1
        word = self.text[self.start : self.pos]
        low = word.lower()
        if low in ("inf", "nan"):
            return self._emit(NUMBER)
        if low in KEY:
            if low in ("fill", "fill_left", "fill_right") and not self._followed_by_paren():
                return self._emit(IDENTIFIER)
            return self._emit(low)
        return self._emit(METRIC_IDENTIFIER if ":" in word else IDENTIFIER)

    def _followed_by_paren(self) -> bool:
        rest = self.text[self.pos :].lstrip(_SPACE)
        return rest.startswith("(")

    def _number_or_duration(self) -> Item:
        if self._scan_number():
            return self._emit(NUMBER)
        if self._remaining_duration():
            self._backup()
            return self._emit(DURATION)
        return self._error(
            f"bad number or duration syntax: {_go_quote(self.text[self.start : self.pos])}"
        )

    def _remaining_duration(self) -> bool:
        if not self._accept("smhdwy"):
            return False
        self._accept("s")
        while self._accept(_DIGITS):
            while self._accept(_DIGITS):
                pass
            if not self._accept("smhdw"):
                return False
            self._accept("s")
        c = self._next()
        return not (c and _alnum(c))

    def _is(self, valid: str) -> bool:
        c = self._peek()
        return bool(c) and c in valid

    def _scan_number(self) -> bool:
        initial = self.pos
        digits = _DIGITS
        if self._accept("0") and self._accept("xX"):
            self._accept("_")
            digits = _HEX
        self._accept(".")
        self._accept(digits)
        dot = exponent = False
        while self._is(digits + "._eE"):
            if self._is(".") and dot:
                self._accept(".")
                return False
            if self._is("eE") and exponent:
                self._accept("eE")
                return False
            if self._accept("."):
                dot = True
                if self._accept("_."):
                    return False
                if len(digits) > 10:
                    return False
                continue
            if self._accept("eE"):
                exponent = True
                self._accept("+-")
                if self._accept("._eE") or not self._peek():
                    return False
                continue
            if self._accept("_"):
                if self._accept("._eE") or not self._peek():
                    return False
                continue
            while self._accept(digits):
                pass
        if self.pos == initial:
            return False
        c = self._peek()
        return not (c and _alnum(c))


def _go_char(c: str) -> str:
    """Return a rune as Go's %q prints it."""
    if c == "":
        return "EOF"
    if c == "'":
        return "'\\''"
    if c == "\n":
        return "'\\n'"
    if c == "\t":
        return "'\\t'"
    return f"'{c}'"


def _go_rune(c: str) -> str:
    """Return a rune as Go's %#U prints it (``U+0064 'd'``)."""
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"
