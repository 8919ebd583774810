"""Typed options: values from the command line, TOML and Python converted to declared types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest

from facebench.errors import ConfigError
from facebench.options import parse_spec_string
from facebench.typed_options import convert_options, convert_value, declared_options, type_name


@pytest.mark.parametrize(
    ("annotation", "given", "expected"),
    [
        (bool, "yes", True),
        (bool, "No", False),
        (bool, "0", False),
        (bool, 1, True),
        (int, "12", 12),
        (int, 3.0, 3),
        (float, "0.5", 0.5),
        (float, 2, 2.0),
        (str, 1.5, "1.5"),
        (str | None, Path("/w.pt"), "/w.pt"),
        (Path, "~/w.pt", Path("~/w.pt")),
        (Literal["mean", "cls"], "cls", "cls"),
        (Literal[1, 2], "2", 2),
        (int | None, "none", None),
        (int | None, None, None),
        (bool | str, "false", False),  # TOML pretrained = "false" means False, not a truthy string
        (bool | str, "laion2b_s34b_b79k", "laion2b_s34b_b79k"),
        (bool | str, True, True),
        (int | tuple[int, int] | None, [224, 224], (224, 224)),
        (int | tuple[int, int] | None, "null", None),
        (tuple[float, float, float], [0, 1, 0.5], (0.0, 1.0, 0.5)),
        (tuple[int, ...], ["1", 2], (1, 2)),
        (list[float], [1, "0.5"], [1.0, 0.5]),
        (list[str], "only", ["only"]),
        (Sequence[int], (1, 2), [1, 2]),
        (dict[str, int], {"a": "1"}, {"a": 1}),
        (Mapping[str, str], {"layer": "mean"}, {"layer": "mean"}),
        (Any, object, object),
    ],
)
def test_values_convert_to_the_declared_type(annotation: Any, given: Any, expected: Any) -> None:
    converted = convert_value(given, annotation)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(
    ("annotation", "given", "expected_text"),
    [
        (bool, "maybe", "true or false"),
        (bool, 2, "true or false"),
        (int, "abc", "int"),
        (int, 2.5, "int"),
        (int, True, "int"),
        (float, "x", "float"),
        (str, None, "str"),
        (Literal["mean", "cls"], "max", "one of 'mean', 'cls'"),
        (tuple[float, float, float], [1, 2], "[float, float, float]"),
        (int | None, "big", "int | none"),
        (dict[str, int], [1], "a table of str -> int"),
    ],
)
def test_wrong_values_name_the_option_the_value_and_the_type(
    annotation: Any, given: Any, expected_text: str
) -> None:
    with pytest.raises(ConfigError) as error:
        convert_value(given, annotation, "model 'm': option 'x'")
    assert str(error.value) == f"model 'm': option 'x' must be {expected_text}, not {given!r}"


class Base:
    def __init__(self, name: str | None = None, seed: int = 0) -> None:
        """Base options.

        - ``seed``: seeds the random weights.
        """


class Child(Base):
    """A plugin class.

    - ``width``: how wide. More text that is not part of the first sentence.
    """

    def __init__(self, width: int = 4, mode: Literal["a", "b"] = "a", **options: Any) -> None:
        super().__init__(**options)


def test_declared_options_follow_kwargs_into_bases_with_help() -> None:
    options = declared_options(Child)
    assert list(options) == ["width", "mode", "name", "seed"]
    assert options["width"].annotation is int and options["width"].default == 4
    assert options["width"].help == "how wide."
    assert options["seed"].help == "seeds the random weights."
    assert options["mode"].to_dict() == {
        "name": "mode",
        "type": "one of 'a', 'b'",
        "default": "a",
        "required": False,
        "help": "",
    }
    assert type_name(options["name"].annotation) == "str | none"


def test_convert_options_from_a_command_line_string() -> None:
    _, raw = parse_spec_string("child:width=8,mode=b,seed=3")
    assert convert_options("model", "child", Child, raw) == {"width": 8, "mode": "b", "seed": 3}
    unknown = r"'child' does not take the option 'widht'; did you mean 'width'\? Accepted options: width,"
    with pytest.raises(ConfigError, match=unknown):
        convert_options("model", "child", Child, {"widht": 3})
    with pytest.raises(ConfigError, match=r"option 'mode' must be one of 'a', 'b', not 'c'"):
        convert_options("model", "child", Child, {"mode": "c"})


def test_open_ended_factories_pass_unknown_options_through() -> None:
    def factory(a: int = 1, **anything: Any) -> None: ...

    assert convert_options("task", "t", factory, {"a": "2", "other": "x"}) == {"a": 2, "other": "x"}
