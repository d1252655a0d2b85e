"""The checks of an alert rule's text, PromQL and Go templates, with kept passes.

Whether a rule's ``expr`` parses as Prometheus parses it (:mod:`specc.promql`) and an
alert's label or annotation parses as a Go template (:mod:`specc.gotemplate`) depends
only on the text and on the parsers' code. Importing the parsers and RE2 and parsing
the example fleet's rules was ~8 % of a ``specc validate``, and almost every rule of a
commit is one that passed in the last run. So a text that passed is kept
(:class:`specc.cachedir.Passes`) under a hash of the text, the parsers' sources and
RE2's binary, and is not parsed again. A text with a problem is parsed every time, so
every message still comes from the parser.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from specc import __version__
from specc.cachedir import Passes, code_digest

if TYPE_CHECKING:
    from specc.gotemplate import TemplateError
    from specc.promql import PromQLError

_P = TypeVar("_P")

#: Bumped when what a kept pass means changes in a way the sources would not show.
_FORMAT = "1"


@functools.cache
def _code() -> str:
    here = Path(__file__).parent
    sources = [*sorted((here / "promql").glob("*.py")), here / "gotemplate.py", Path(__file__)]
    return code_digest((_FORMAT, __version__), sources, ("re2",))


def promql_problem(text: str) -> PromQLError | None:
    """Return the problem Prometheus would report for expression ``text``, or None."""
    return _unless_kept("promql", text, _parse_promql)


def template_problem(text: str) -> TemplateError | None:
    """Return the problem Prometheus's template parser finds in an alert's text, or None."""
    if "{{" not in text:
        return None
    return _unless_kept("template", text, _parse_template)


def _unless_kept(check: str, text: str, parse: Callable[[str], _P | None]) -> _P | None:
    """Return ``parse(text)``'s problem, or None at once if ``text`` passed ``check`` before."""
    passes = Passes.open("rules", _code())
    if passes is None:  # the store is off, or the parsers' code unknown
        return parse(text)
    key = passes.key(check, text)
    if passes.passed(key):
        return None
    problem = parse(text)
    if problem is None:
        passes.record(key)
    return problem


# The parsers are imported only for a text not kept: a warm start never imports them.
def _parse_promql(text: str) -> PromQLError | None:
    from specc import promql

    return promql.check(text)


def _parse_template(text: str) -> TemplateError | None:
    from specc.gotemplate import check_template

    return check_template(text)
