"""Validator errors that point at the item they concern, all of them at once.

A validator that raises ``ValueError`` reports one problem at the field it validates
(a list, a whole spec). Raising the :class:`pydantic.ValidationError` that
:func:`located` builds instead reports every problem found, each at its own place below
that field: pydantic nests the inner locations under the validator's own, so a
duplicate port is reported at ``spec.ports[1].name``, not at ``spec.ports``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

#: A place below the validated field (``(1, "name")``) and what is wrong there.
Problem = tuple[tuple[str | int, ...], str]


def located(problems: Sequence[Problem], title: str = "spec") -> ValidationError:
    """Return a ValidationError listing ``problems``, each at its own location."""
    return ValidationError.from_exception_data(
        title,
        [
            # The message is a template; braces in it (quoted values) must stay literal.
            {
                "type": PydanticCustomError("value_error", "{message}", {"message": message}),
                "loc": loc,
                "input": None,
            }
            for loc, message in problems
        ],
    )


def raise_problems(problems: Sequence[Problem], title: str = "spec") -> None:
    """Raise :func:`located` of ``problems`` if there are any."""
    if problems:
        raise located(problems, title)
