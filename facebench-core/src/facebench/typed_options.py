"""Typed plugin options: a plugin's options are its constructor's annotated keyword parameters.

:func:`declared_options` reads them (following ``**options`` into base classes, so a model
has :class:`~facebench.model.BaseModel`'s too); :func:`convert_options` converts values from
the command line (strings or JSON-ish values), TOML and Python to the declared types and
checks them. A wrong value is a :class:`~facebench.errors.ConfigError` naming the option, the
value and what is expected; an unknown option gets "did you mean".

Supported annotations: ``bool`` (true/false/yes/no/on/off/1/0), ``int``, ``float``, ``str``,
``pathlib.Path``, ``Literal[...]`` choices, ``None`` (``none``/``null``), unions of these
(tried in order), ``list[X]``/``Sequence[X]``, ``tuple[X, ...]`` and ``tuple[X, Y]``,
``dict[K, V]``/``Mapping[K, V]``. Anything else (a callable, a config object, ``Any``) is
passed through unchanged. Importing this module imports no torch.
"""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from facebench.errors import ConfigError

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
NONE_WORDS = frozenset({"none", "null"})
EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Option:
    """One declared option: its name, annotation, default (``EMPTY`` when required) and help."""

    name: str
    annotation: Any
    default: Any = EMPTY
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is EMPTY

    def to_dict(self) -> dict[str, Any]:
        """JSON for ``facebench describe --json``."""
        return {
            "name": self.name,
            "type": type_name(self.annotation),
            "default": None if self.required else json_value(self.default),
            "required": self.required,
            "help": self.help,
        }


class _Invalid(Exception):
    """A value does not fit an annotation (turned into a ConfigError by the caller)."""


# ---------------------------------------------------------------------------------- declarations
def declared_options(factory: Callable[..., Any]) -> dict[str, Option]:
    """The keyword options of ``factory`` (a class or function), in declaration order.

    A class's ``**kwargs`` are followed into its base classes' ``__init__``; ``self`` and
    ``*args``/``**kwargs`` themselves are not options. Help comes from docstrings (a line
    ``- ``name``: help`` or ``name: help`` in the ``__init__``, class or module docstring).
    """
    functions = _signature_functions(factory)
    options: dict[str, Option] = {}
    all_helps: dict[str, str] = {}  # a re-declared option without help of its own takes its base's
    for function in functions:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            break
        hints = _type_hints(function)
        helps = _help_lines(function, factory)
        all_helps = helps | all_helps
        for parameter in parameters:
            if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                continue
            if parameter.name == "self" or parameter.name in options:
                continue
            annotation = hints.get(parameter.name, parameter.annotation)
            options[parameter.name] = Option(
                parameter.name,
                Any if annotation is EMPTY else annotation,
                parameter.default,
                helps.get(parameter.name, ""),
            )
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return {
        name: option
        if option.help
        else Option(name, option.annotation, option.default, all_helps.get(name, ""))
        for name, option in options.items()
    }


def accepts_any_keyword(factory: Callable[..., Any]) -> bool:
    """True when ``factory`` ends in a ``**kwargs`` that no base class ``__init__`` pins down."""
    for function in _signature_functions(factory):
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            return True
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            return False
    return True


def _signature_functions(factory: Callable[..., Any]) -> list[Callable[..., Any]]:
    if inspect.isclass(factory):
        return [cls.__init__ for cls in factory.__mro__ if "__init__" in vars(cls) and cls is not object]
    return [factory]


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations; one that cannot be resolved stays a string (treated as ``Any``)."""
    try:
        return typing.get_type_hints(function)
    except Exception:
        return dict(getattr(function, "__annotations__", {}))


_HELP_LINE = re.compile(r"^\s*(?:[-*]\s*)?``?(\w+)``?\s*(?:\([^)]*\))?\s*:\s*(\S.*)$")
_PLAIN_HELP_LINE = re.compile(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(\S.*)$")


def _help_lines(function: Callable[..., Any], factory: Callable[..., Any]) -> dict[str, str]:
    """``{option: first sentence}`` from the docstrings of ``function``, its class and module.

    A help that wraps onto more-indented lines is read whole, so a sentence is never cut at a
    line break.
    """
    owner = _owner_class(function)
    sources = [function, owner, inspect.getmodule(owner or function)]
    if inspect.isclass(factory) and owner is factory:
        sources.insert(1, factory)
    helps: dict[str, str] = {}
    for source in sources:
        doc = inspect.getdoc(source) if source is not None else None
        lines = (doc or "").splitlines()
        for number, line in enumerate(lines):
            match = _HELP_LINE.match(line) or _PLAIN_HELP_LINE.match(line)
            if match and match.group(1) not in helps:
                helps[match.group(1)] = _first_sentence(
                    " ".join([match.group(2), *_continuation(lines, number)])
                )
    return helps


def _continuation(lines: list[str], number: int) -> list[str]:
    """The lines continuing the help on ``lines[number]``: those indented deeper, and those at
    the same depth while its first sentence has not ended (up to a blank line or another option)."""
    indent = len(lines[number]) - len(lines[number].lstrip())
    text = lines[number]
    following: list[str] = []
    for line in lines[number + 1 :]:
        depth = len(line) - len(line.lstrip())
        if not line.strip() or depth < indent:
            break
        if depth == indent and (_sentence_end(text) is not None or _HELP_LINE.match(line)):
            break
        following.append(line.strip())
        text += " " + line.strip()
    return following


def _owner_class(function: Callable[..., Any]) -> type | None:
    qualname = getattr(function, "__qualname__", "")
    module = inspect.getmodule(function)
    if "." not in qualname or module is None:
        return None
    owner = getattr(module, qualname.rsplit(".", 1)[0], None)
    return owner if inspect.isclass(owner) else None


_ABBREVIATIONS = ("e.g", "i.e", "etc", "vs", "cf")


def _first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not one of "e.g.", "i.e.", "etc.", ...)."""
    text = " ".join(text.replace("``", "").split())
    end = _sentence_end(text)
    return text if end is None else text[: end + 1]


def _sentence_end(text: str) -> int | None:
    """The index of the first full stop followed by a space (or the end), abbreviations excepted."""
    for stop in re.finditer(r"\.(?=\s|$)", text):
        if not text[: stop.start()].lower().endswith(_ABBREVIATIONS):
            return stop.start()
    return None


# ---------------------------------------------------------------------------------- converting
def convert_options(
    kind: str, name: str, factory: Callable[..., Any], options: Mapping[str, Any]
) -> dict[str, Any]:
    """``options`` converted to ``factory``'s declared types; unknown options and wrong values
    raise :class:`ConfigError`."""
    declared = declared_options(factory)
    open_ended = accepts_any_keyword(factory)
    converted: dict[str, Any] = {}
    for key, value in options.items():
        option = declared.get(key)
        if option is None:
            if open_ended:
                converted[key] = value
                continue
            raise ConfigError(unknown_option_message(kind, name, key, list(declared)))
        converted[key] = convert_value(value, option.annotation, f"{kind} {name!r}: option {key!r}")
    return converted


def unknown_option_message(kind: str, name: str, key: str, known: list[str]) -> str:
    """``model 'vgg16' does not take the option 'pretraind'; did you mean 'pretrained'?
    Accepted options: ...``"""
    message = f"{kind} {name!r} does not take the option {key!r}."
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    if close:
        message = message[:-1] + "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f"{message} Accepted options: {', '.join(known) or 'none'} (facebench describe {name})."


def convert_value(value: Any, annotation: Any, where: str = "value") -> Any:
    """``value`` as ``annotation`` says, or a :class:`ConfigError` starting with ``where``."""
    try:
        return _convert(value, annotation)
    except _Invalid:
        raise ConfigError(f"{where} must be {type_name(annotation)}, not {value!r}") from None


def _convert(value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any or isinstance(annotation, str | typing.TypeVar):
        return value
    if annotation is None or annotation is type(None):
        if value is None or (isinstance(value, str) and value.lower() in NONE_WORDS):
            return None
        raise _Invalid
    if origin is Union or origin is types.UnionType:
        return _convert_union(value, args)
    if origin is Literal:
        return _convert_literal(value, args)
    if origin is typing.Annotated:
        return _convert(value, args[0])
    if annotation is bool:
        return _convert_bool(value)
    if annotation is int:
        return _convert_int(value)
    if annotation is float:
        return _convert_float(value)
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | os.PathLike) and not isinstance(value, bool):
            return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
        raise _Invalid
    if annotation is Path or (inspect.isclass(annotation) and issubclass(annotation, Path)):
        if isinstance(value, str | Path) and str(value):
            return Path(value)
        raise _Invalid
    if origin in (list, collections.abc.Sequence, collections.abc.MutableSequence, set, frozenset):
        items = value if isinstance(value, list | tuple | set | frozenset) else [value]
        item_type = args[0] if args else Any
        converted = [_convert(item, item_type) for item in items]
        return converted if origin not in (set, frozenset) else origin(converted)
    if origin is tuple:
        return _convert_tuple(value, args)
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            raise _Invalid
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        return {_convert(k, key_type): _convert(v, value_type) for k, v in value.items()}
    if origin is not None:
        return value  # Callable[...], type[...], ...: passed through
    if inspect.isclass(annotation) and annotation.__module__ != "builtins":
        return value  # a config object, a module class: passed through, the plugin checks it
    if inspect.isclass(annotation) and not isinstance(value, annotation):
        raise _Invalid
    return value


def _convert_union(value: Any, args: tuple[Any, ...]) -> Any:
    allows_none = type(None) in args
    if value is None:
        if allows_none:
            return None
        raise _Invalid
    literal_strings = {a for arg in args if typing.get_origin(arg) is Literal for a in typing.get_args(arg)}
    if (
        allows_none
        and isinstance(value, str)
        and value.lower() in NONE_WORDS
        and value not in literal_strings
    ):
        return None
    # a non-text value that already has one of the plain types keeps it (1 stays 1 for float | int);
    # text is tried against each type in order ("false" is False for bool | str)
    for arg in args:
        if arg in (bool, int, float) and type(value) is arg:
            return value
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg)
        except _Invalid:
            continue
    raise _Invalid


def _convert_literal(value: Any, choices: tuple[Any, ...]) -> Any:
    for choice in choices:
        if value == choice and type(value) is type(choice):
            return choice
    for choice in choices:  # "3" for Literal[3], "true" for Literal[True]
        try:
            if _convert(value, type(choice)) == choice:
                return choice
        except _Invalid:
            continue
    raise _Invalid


def _convert_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise _Invalid


def _convert_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Invalid
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise _Invalid from None
    raise _Invalid


def _convert_float(value: Any) -> float:
    if isinstance(value, bool):
        raise _Invalid
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise _Invalid from None
    raise _Invalid


def _convert_tuple(value: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise _Invalid
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(item, args[0]) for item in value)
    if not args:
        return tuple(value)
    if len(value) != len(args):
        raise _Invalid
    return tuple(_convert(item, arg) for item, arg in zip(value, args, strict=True))


# ---------------------------------------------------------------------------------- describing
def type_name(annotation: Any) -> str:
    """How an annotation reads in messages and ``facebench describe``: ``int | none``,
    ``one of 'bilinear', 'bicubic'``, ``[int, int]``, ``list of str``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return "any value"
    if isinstance(annotation, str):
        return annotation
    if annotation is None or annotation is type(None):
        return "none"
    if origin is Union or origin is types.UnionType:
        return " | ".join(type_name(arg) for arg in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if annotation is bool:
        return "true or false"
    if annotation in (int, float, str):
        return annotation.__name__
    if annotation is Path:
        return "a path"
    if origin in (list, collections.abc.Sequence, collections.abc.MutableSequence, set, frozenset):
        return f"a list of {type_name(args[0])}" if args else "a list"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {type_name(args[0])}"
        return "[" + ", ".join(type_name(arg) for arg in args) + "]"
    if origin in (dict, collections.abc.Mapping):
        return f"a table of {type_name(args[0])} -> {type_name(args[1])}" if args else "a table"
    if origin is collections.abc.Callable:
        return "a callable (Python only)"
    return getattr(annotation, "__name__", repr(annotation))


def json_value(value: Any) -> Any:
    """``value`` as JSON: tuples become lists, paths strings, other objects their repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(json_value(item) for item in value)
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return json_value(to_dict())
    return repr(value)


__all__ = [
    "Option",
    "accepts_any_keyword",
    "convert_options",
    "convert_value",
    "declared_options",
    "json_value",
    "type_name",
    "unknown_option_message",
]
