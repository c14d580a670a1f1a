"""Typed checking of user-written data (plans blocks, study files) with one-sentence errors.

The models are pydantic models in strict mode: ``"1"`` is not a number, ``true`` is not a fold,
an unknown key is an error. :func:`first_problem` turns pydantic's error list into the one
sentence the command line prints, naming the key as the user wrote it (``schedule.num_epochs``,
``sources[1].task``) and what is allowed.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class StrictModel(BaseModel):
    """Strict types, unknown keys refused, immutable after checking."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _key(loc: tuple, prefix: str) -> str:
    """``('sources', 1, 'task')`` -> ``sources[1].task`` (with ``prefix.`` in front)."""
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _is_union_tag(part: Any) -> bool:
    """pydantic adds the member type of a union to an error's location (``int``, ``literal['all']``)."""
    return isinstance(part, str) and ("[" in part or "-" in part
                                      or part in {"int", "str", "float", "bool", "list", "dict", "none"})


def _allowed(model: type[BaseModel] | None, loc: tuple) -> list[str]:
    """Field names allowed at the place of an unknown key, when the model is known."""
    for part in loc[:-1]:
        if model is None:
            return []
        if isinstance(part, int) or part not in model.model_fields:  # a list index or a dict key
            continue
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        inner = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type)]
        candidates = [annotation, *inner]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return sorted(model.model_fields) if model is not None else []


def first_problem(error: ValidationError, prefix: str = "", model: type[BaseModel] | None = None,
                  what: str = "key") -> str:
    """The first problem of ``error`` as ``'<key>' <what is wrong>``.

    ``prefix`` is put before the key (``training_schedule``); ``model`` lets an unknown key's
    message list the keys allowed at its place; ``what`` names the kind of key ("study key").
    """
    errors = error.errors(include_url=False)
    first = errors[0]
    loc = tuple(p for p in first["loc"] if not _is_union_tag(p))
    same = [e for e in errors if tuple(p for p in e["loc"] if not _is_union_tag(p)) == loc]
    key, value, kind = _key(loc, prefix), first.get("input"), first["type"]
    if kind == "extra_forbidden":
        allowed = _allowed(model, loc)
        return f"'{key}' is not a {what}" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
    if kind == "missing":
        return f"'{key}' is required"
    if kind == "literal_error" and len(same) == 1:
        choices = first["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        return f"'{key}' is {value!r}; choose from {choices}"
    if len(same) > 1:  # a union: say what each member expected
        expected = "; or ".join(dict.fromkeys(e["msg"].removeprefix("Input should be ").removeprefix("Value error, ")
                                              for e in same))
        return f"'{key}' is {value!r}; it should be {expected}"
    message = first["msg"].removeprefix("Value error, ")
    message = message[0].lower() + message[1:] if message else message
    if kind.startswith("value_error") or kind.startswith("assertion"):
        return f"'{key}' {message}" if key else message
    return f"'{key}' is {value!r}: {message}"
