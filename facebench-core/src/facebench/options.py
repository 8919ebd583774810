"""``NAME:key=value,key=value`` strings, as ``--model`` and ``--task`` take them.

Values are read as JSON when they parse (``true``, ``3``, ``0.5``, ``null``, ``"x"``), as a
list when bracketed (``layers=[features.3,features.8]``), and as plain text otherwise.
Nothing is evaluated.
"""

from __future__ import annotations

import json
from typing import Any

from facebench.errors import ConfigError


def parse_spec_string(text: str) -> tuple[str, dict[str, Any]]:
    """``"vgg16:pretrained=false,layers=[a,b]"`` -> ``("vgg16", {"pretrained": False, ...})``."""
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise ConfigError(f"{text!r}: expected NAME or NAME:key=value,...")
    options: dict[str, Any] = {}
    for item in split_top_level(rest):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{text!r}: option {item!r} is not key=value")
        if key in options:
            raise ConfigError(f"{text!r}: option {key!r} given twice")
        options[key] = parse_value(value.strip())
    return name, options


def split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets or quotes."""
    parts: list[str] = []
    depth, quote, current = 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if depth or quote:
        raise ConfigError(f"{text!r}: unbalanced brackets or quotes")
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def parse_value(value: str) -> Any:
    """A JSON value, a bracketed list of values, or the text itself."""
    if value.startswith("[") and value.endswith("]"):
        return [parse_value(item) for item in split_top_level(value[1:-1])]
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value.lower() in ("none", "null"):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value.strip("'\"")
