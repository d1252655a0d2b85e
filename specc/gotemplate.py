"""Alert templates parsed as Prometheus parses them: Go's text/template, parse stage only.

Prometheus checks each label and annotation of an alerting rule by parsing
``{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL :=
.ExternalURL}}{{$value := .Value}}`` followed by the text, with its template functions
and Go's built-ins (model/rulefmt's testTemplateParsing). Parsing finds what can be
known without data: unknown functions and variables, unbalanced blocks, bad tokens.
This module follows text/template/parse (lex.go, parse.go) state for state, linearly
and with bounded nesting, and says what Go says, at the offset where it happens.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Functions of Prometheus's template expander (template/template.go) and Go's built-ins.
PROMETHEUS_FUNCTIONS = frozenset(
    {"query", "first", "label", "value", "strvalue", "args", "reReplaceAll", "safeHtml"}
    | {"match", "title", "toUpper", "toLower", "graphLink", "tableLink", "sortByLabel"}
    | {"stripPort", "stripDomain", "humanize", "humanize1024", "humanizeDuration"}
    | {"humanizePercentage", "humanizeTimestamp", "toTime", "toDuration", "now"}
    | {"pathPrefix", "externalURL", "parseDuration", "urlQueryEscape"}
)
GO_BUILTINS = frozenset(
    {"and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf"}
    | {"println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne"}
)
#: Variables every alert template starts with.
ALERT_VARIABLES = ("$labels", "$externalLabels", "$externalURL", "$value")
#: Deepest nesting of blocks and parentheses analysed (Go stops parentheses at 10,000).
MAX_DEPTH = 100

_KEYWORDS = {
    ".": "dot",
    "block": "block",
    "break": "break",
    "continue": "continue",
    "define": "define",
    "else": "else",
    "end": "end",
    "if": "if",
    "range": "range",
    "nil": "nil",
    "template": "template",
    "with": "with",
}
_SPACE = " \t\r\n"
_OPERAND_START = frozenset(
    {"bool", "charconst", "complex", "dot", "field", "identifier", "number", "nil"}
    | {"rawstring", "string", "variable", "("}
)


class TemplateError(Exception):
    """A template that does not parse: Go's message and the offset it concerns."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


@dataclass(frozen=True, slots=True)
class _Item:
    typ: str
    pos: int
    val: str

    def __str__(self) -> str:
        if self.typ == "eof":
            return "EOF"
        if self.typ == "error":
            return self.val
        if self.typ in _KEYWORDS.values() and self.typ != "dot":
            return f"<{self.val}>"
        if len(self.val) > 10:
            return _quote(self.val[:10]) + "..."
        return _quote(self.val)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdigit()


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.inside = False
        self.paren_depth = 0
        self.items: list[_Item] = []

    def _at_right_delim(self) -> tuple[bool, bool]:
        text, pos = self.text, self.pos
        if text[pos : pos + 1] in tuple(_SPACE) and text.startswith("-}}", pos + 1):
            return True, True
        return text.startswith("}}", pos), False

    def _at_terminator(self) -> bool:
        c = self.text[self.pos : self.pos + 1]
        if c == "" or c in _SPACE or c in ".,|:)(":
            return True
        return self.text.startswith("}}", self.pos)

    def _emit(self, typ: str) -> None:
        self.items.append(_Item(typ, self.start, self.text[self.start : self.pos]))
        self.start = self.pos

    def _error(self, message: str) -> None:
        self.items.append(_Item("error", self.start, message))

    def run(self) -> list[_Item]:
        """Return every token; the last is "eof" or "error"."""
        text = self.text
        while True:
            if not self.inside:
                x = text.find("{{", self.pos)
                if x < 0:
                    self.pos = len(text)
                    if self.pos > self.start:
                        self._emit("text")
                    self._emit("eof")
                    return self.items
                if x > self.pos:
                    self.pos = x
                    self._emit("text")
                if not self._left_delim():
                    return self.items
                continue
            if not self._inside_action():
                return self.items

    def _left_delim(self) -> bool:
        text = self.text
        self.pos += 2
        trim = len(text) >= self.pos + 2 and text[self.pos] == "-" and text[self.pos + 1] in _SPACE
        after = 2 if trim else 0
        if text.startswith("/*", self.pos + after):
            self.pos += after
            self.start = self.pos
            end = text.find("*/", self.pos + 2)
            if end < 0:
                self._error("unclosed comment")
                return False
            self.pos = end + 2
            delim, trim_right = self._at_right_delim()
            if not delim:
                self._error("comment ends before closing delimiter")
                return False
            self.pos += (2 if trim_right else 0) + 2
            self.start = self.pos
            return True
        self.items.append(_Item("leftdelim", self.pos - 2, "{{"))
        self.inside = True
        self.pos += after
        self.start = self.pos
        self.paren_depth = 0
        return True

    def _inside_action(self) -> bool:
        text = self.text
        delim, trim = self._at_right_delim()
        if delim:
            if self.paren_depth:
                self._error("unclosed left paren")
                return False
            if trim:
                self.pos += 2
                self.start = self.pos
            self.pos += 2
            self._emit("rightdelim")
            self.inside = False
            return True
        if self.pos >= len(text):
            self._error("unclosed action")
            return False
        c = text[self.pos]
        self.pos += 1
        if c in _SPACE:
            while self.pos < len(text) and text[self.pos] in _SPACE:
                self.pos += 1
            # " -}}": the last space belongs to the trim marker.
            if text.startswith("-}}", self.pos):
                self.pos -= 1
                if self.pos == self.start:
                    return True
            self._emit("space")
            return True
        if c == "=":
            self._emit("assign")
        elif c == ":":
            if text[self.pos : self.pos + 1] != "=":
                self._error("expected :=")
                return False
            self.pos += 1
            self._emit("declare")
        elif c == "|":
            self._emit("pipe")
        elif c == '"':
            return self._quoted('"', "unterminated quoted string", "string")
        elif c == "`":
            end = text.find("`", self.pos)
            if end < 0:
                self._error("unterminated raw quoted string")
                return False
            self.pos = end + 1
            self._emit("rawstring")
        elif c == "'":
            return self._quoted("'", "unterminated character constant", "charconst")
        elif c == "$":
            return self._field_or_variable("variable")
        elif c == "." and not (
            "0" <= text[self.pos : self.pos + 1] <= "9" and self.pos < len(text)
        ):
            return self._field_or_variable("field")
        elif c in "+-." or "0" <= c <= "9":
            self.pos -= 1
            return self._number()
        elif _alnum(c):
            while self.pos < len(text) and _alnum(text[self.pos]):
                self.pos += 1
            word = text[self.start : self.pos]
            if not self._at_terminator():
                self._error(f"bad character {_go_rune(text[self.pos])}")
                return False
            if word in _KEYWORDS:
                self._emit(_KEYWORDS[word])
            elif word in ("true", "false"):
                self._emit("bool")
            else:
                self._emit("identifier")
        elif c == "(":
            self.paren_depth += 1
            self._emit("(")
        elif c == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self._error("unexpected right paren")
                return False
            self._emit(")")
        elif c.isascii() and c.isprintable():
            self._emit("char")
        else:
            self._error(f"unrecognized character in action: {_go_rune(c)}")
            return False
        return True

    def _quoted(self, quote: str, unterminated: str, typ: str) -> bool:
        text = self.text
        while True:
            c = text[self.pos : self.pos + 1]
            self.pos += 1
            if c == "\\":
                nxt = text[self.pos : self.pos + 1]
                self.pos += 1
                if nxt not in ("", "\n"):
                    continue
                c = ""
            if c in ("", "\n"):
                self.pos = min(self.pos, len(text))
                self._error(unterminated)
                return False
            if c == quote:
                self._emit(typ)
                return True

    def _field_or_variable(self, typ: str) -> bool:
        if self._at_terminator():
            self._emit("variable" if typ == "variable" else "dot")
            return True
        text = self.text
        while self.pos < len(text) and _alnum(text[self.pos]):
            self.pos += 1
        if not self._at_terminator():
            self._error(f"bad character {_go_rune(text[self.pos])}")
            return False
        self._emit(typ)
        return True

    def _accept(self, valid: str) -> bool:
        if self.pos < len(self.text) and self.text[self.pos] in valid:
            self.pos += 1
            return True
        return False

    def _run(self, valid: str) -> None:
        while self._accept(valid):
            pass

    def _scan_number(self) -> bool:
        self._accept("+-")
        digits = "0123456789_"
        if self._accept("0"):
            if self._accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self._accept("oO"):
                digits = "01234567_"
            elif self._accept("bB"):
                digits = "01_"
        self._run(digits)
        if self._accept("."):
            self._run(digits)
        if len(digits) == 11 and self._accept("eE"):
            self._accept("+-")
            self._run("0123456789_")
        if len(digits) == 23 and self._accept("pP"):
            self._accept("+-")
            self._run("0123456789_")
        self._accept("i")
        if self.pos < len(self.text) and _alnum(self.text[self.pos]):
            self.pos += 1
            return False
        return True

    def _number(self) -> bool:
        if not self._scan_number():
            self._error(f"bad number syntax: {_quote(self.text[self.start : self.pos])}")
            return False
        if self.text[self.pos : self.pos + 1] in ("+", "-") and self.pos < len(self.text):
            if not self._scan_number() or self.text[self.pos - 1] != "i":
                self._error(f"bad number syntax: {_quote(self.text[self.start : self.pos])}")
                return False
            self._emit("complex")
            return True
        self._emit("number")
        return True


def _go_rune(c: str) -> str:
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"


class _Stop(Exception):
    pass


class _Parser:
    def __init__(self, items: list[_Item], functions: frozenset[str], variables: tuple[str, ...]):
        self.items = items
        self.i = 0
        self.functions = functions
        self.vars = ["$", *variables]
        self.range_depth = 0
        self.depth = 0
        self.error: TemplateError | None = None

    # -- tokens ---------------------------------------------------------------------------

    def _next(self) -> _Item:
        item = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        return item

    def _backup(self, n: int = 1) -> None:
        self.i -= n

    def _peek(self) -> _Item:
        return self.items[min(self.i, len(self.items) - 1)]

    def _next_non_space(self) -> _Item:
        item = self._next()
        while item.typ == "space":
            item = self._next()
        return item

    def _peek_non_space(self) -> _Item:
        item = self._next_non_space()
        self._backup()
        return item

    def _fail(self, message: str, pos: int) -> _Stop:
        self.error = TemplateError(message, pos)
        return _Stop()

    def _unexpected(self, item: _Item, context: str) -> _Stop:
        if item.typ == "error":
            return self._fail(item.val, item.pos)
        return self._fail(f"unexpected {item} in {context}", item.pos)

    def _expect(self, typ: str, context: str) -> _Item:
        item = self._next_non_space()
        if item.typ != typ:
            raise self._unexpected(item, context)
        return item

    def _enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._fail(f"template nests deeper than {MAX_DEPTH} levels (specc's limit)", pos)

    # -- structure ------------------------------------------------------------------------

    def parse(self) -> None:
        while self._peek().typ != "eof":
            if self._peek().typ == "leftdelim":
                delim = self._next()
                if self._next_non_space().typ == "define":
                    self._definition(delim)
                    continue
                self._rewind_to(delim)
            kind, item = self._text_or_action()
            if kind in ("end", "else"):
                raise self._fail(f"unexpected {{{{{kind}}}}}", item.pos)

    def _rewind_to(self, delim: _Item) -> None:
        while self.items[self.i - 1] is not delim:
            self.i -= 1
        self.i -= 1

    def _definition(self, delim: _Item) -> None:
        context = "define clause"
        name = self._next_non_space()
        if name.typ not in ("string", "rawstring"):
            raise self._unexpected(name, context)
        self._expect("rightdelim", context)
        saved, self.vars = self.vars, ["$"]
        kind, item = self._item_list()
        self.vars = saved
        if kind != "end":
            raise self._fail(f"unexpected {{{{{kind}}}}} in {context}", item.pos)

    def _item_list(self) -> tuple[str, _Item]:
        while self._peek_non_space().typ != "eof":
            kind, item = self._text_or_action()
            if kind in ("end", "else"):
                return kind, item
        raise self._fail("unexpected EOF", self._peek().pos)

    def _text_or_action(self) -> tuple[str, _Item]:
        item = self._next_non_space()
        if item.typ == "text":
            return "text", item
        if item.typ == "leftdelim":
            return self._action()
        raise self._unexpected(item, "input")

    def _action(self) -> tuple[str, _Item]:
        item = self._next_non_space()
        typ = item.typ
        if typ == "block":
            self._block()
        elif typ in ("break", "continue"):
            nxt = self._next_non_space()
            if nxt.typ != "rightdelim":
                raise self._unexpected(nxt, f"{{{{{typ}}}}}")
            if self.range_depth == 0:
                raise self._fail(f"{{{{{typ}}}}} outside {{{{range}}}}", item.pos)
        elif typ == "else":
            peek = self._peek_non_space()
            if peek.typ not in ("if", "with"):
                self._expect("rightdelim", "else")
            return "else", item
        elif typ == "end":
            self._expect("rightdelim", "end")
            return "end", item
        elif typ in ("if", "range", "with"):
            self._control(typ, item)
        elif typ == "template":
            self._template()
        else:
            self._backup()
            self._pipeline("command", "rightdelim")
        return "action", item

    def _control(self, context: str, start: _Item) -> None:
        self._enter(start.pos)
        saved = len(self.vars)
        self._pipeline(context, "rightdelim")
        if context == "range":
            self.range_depth += 1
        kind, item = self._item_list()
        if context == "range":
            self.range_depth -= 1
        if kind == "else":
            if context in ("if", "with") and self._peek_non_space().typ == context:
                nxt = self._next_non_space()
                self._control(context, nxt)
            else:
                kind, item = self._item_list()
                if kind != "end":
                    raise self._fail(f"expected end; found {{{{{kind}}}}}", item.pos)
        del self.vars[saved:]
        self.depth -= 1

    def _block(self) -> None:
        context = "block clause"
        name = self._next_non_space()
        if name.typ not in ("string", "rawstring"):
            raise self._unexpected(name, context)
        self._pipeline(context, "rightdelim")
        self._enter(name.pos)
        saved, self.vars = self.vars, ["$"]
        kind, item = self._item_list()
        self.vars = saved
        self.depth -= 1
        if kind != "end":
            raise self._fail(f"unexpected {{{{{kind}}}}} in {context}", item.pos)

    def _template(self) -> None:
        context = "template clause"
        name = self._next_non_space()
        if name.typ not in ("string", "rawstring"):
            raise self._unexpected(name, context)
        if self._next_non_space().typ != "rightdelim":
            self._backup()
            self._pipeline(context, "rightdelim")

    # -- pipelines --------------------------------------------------------------------------

    def _pipeline(self, context: str, end: str) -> None:
        commands: list[_Item] = []
        declared = 0
        while True:
            v = self._peek_non_space()
            if v.typ != "variable":
                break
            self._next_non_space()
            after = self._peek()
            nxt = self._peek_non_space()
            if nxt.typ in ("assign", "declare"):
                self._next_non_space()
                self.vars.append(v.val)
                break
            if nxt.typ == "char" and nxt.val == ",":
                self._next_non_space()
                self.vars.append(v.val)
                declared += 1
                if context == "range" and declared < 2:
                    if self._peek_non_space().typ in ("variable", "rightdelim", ")"):
                        continue
                    raise self._fail("range can only initialize variables", nxt.pos)
                raise self._fail(f"too many declarations in {context}", nxt.pos)
            if after.typ == "space":
                self._backup(2)
            else:
                self._backup()
            break
        while True:
            item = self._next_non_space()
            if item.typ == end:
                if not commands:
                    raise self._fail(f"missing value for {context}", item.pos)
                return
            if item.typ in _OPERAND_START:
                self._backup()
                commands.append(self._command(len(commands) + 1))
            else:
                raise self._unexpected(item, context)

    def _command(self, stage: int) -> _Item:
        first: _Item | None = None
        while True:
            self._peek_non_space()
            operand = self._operand()
            if operand is not None and first is None:
                first = operand
            item = self._next()
            if item.typ == "space":
                continue
            if item.typ in ("rightdelim", ")"):
                self._backup()
            elif item.typ != "pipe":
                raise self._unexpected(item, "operand")
            break
        if first is None:
            raise self._fail("empty command", self._peek().pos)
        if stage > 1 and first.typ in ("bool", "dot", "nil", "number", "string", "rawstring"):
            raise self._fail(f"non executable command in pipeline stage {stage}", first.pos)
        return first

    def _operand(self) -> _Item | None:
        node = self._term()
        if node is None:
            return None
        if self._peek().typ == "field":
            if node.typ in ("bool", "string", "rawstring", "number", "nil", "dot", "charconst"):
                raise self._fail(f"unexpected . after term {_quote(node.val)}", self._peek().pos)
            while self._peek().typ == "field":
                self._next()
        return node

    def _term(self) -> _Item | None:
        item = self._next_non_space()
        typ = item.typ
        if typ == "identifier":
            if item.val not in self.functions:
                raise self._fail(f"function {_quote(item.val)} not defined", item.pos)
            return item
        if typ == "variable":
            name = item.val
            if name not in self.vars:
                raise self._fail(f"undefined variable {_quote(name)}", item.pos)
            return item
        if typ == "number" and not _number_ok(item.val):
            raise self._fail(f"illegal number syntax: {_quote(item.val)}", item.pos)
        if typ == "charconst" and not _char_ok(item.val):
            raise self._fail(f"malformed character constant: {item.val}", item.pos)
        if typ in ("dot", "nil", "field", "bool", "number", "complex", "charconst"):
            return item
        if typ in ("string", "rawstring"):
            if typ == "string":
                from specc.promql.parser import go_unquote

                try:
                    go_unquote(item.val)
                except ValueError:
                    raise self._fail("invalid syntax", item.pos) from None
            return item
        if typ == "(":
            self._enter(item.pos)
            self._pipeline("parenthesized pipeline", ")")
            self.depth -= 1
            return item
        self._backup()
        return None


def _number_ok(text: str) -> bool:
    from specc.promql.parser import go_number

    body = text.lstrip("+-").removesuffix("i")
    if "p" in body.lower() and body.lower().startswith("0x"):
        return True  # a hexadecimal float, which Go reads and specc need not evaluate
    return bool(body) and go_number(body) is not None


def _char_ok(text: str) -> bool:
    """Whether a character constant holds exactly one character (strconv.UnquoteChar)."""
    body = text[1:-1]
    if not body.startswith("\\"):
        return len(body) == 1 and body != "'"
    from specc.promql.parser import go_unquote

    try:
        return len(go_unquote("'" + body + "'")) == 1
    except ValueError:
        return False


def check_template(
    text: str,
    functions: frozenset[str] = PROMETHEUS_FUNCTIONS | GO_BUILTINS,
    variables: tuple[str, ...] = ALERT_VARIABLES,
) -> TemplateError | None:
    """Return the first problem Go's text/template parser finds in ``text``, or None."""
    if "{{" not in text:
        return None
    parser = _Parser(_Lexer(text).run(), functions, variables)
    try:
        parser.parse()
    except _Stop:
        return parser.error
    except RecursionError:
        return TemplateError("template nests too deeply to analyse", 0)
    return None
