"""``NAME:key=value`` strings."""

from __future__ import annotations

import pytest

from facebench.errors import ConfigError
from facebench.options import parse_spec_string


def test_name_only() -> None:
    assert parse_spec_string("vgg16") == ("vgg16", {})


def test_typed_values_and_lists() -> None:
    name, options = parse_spec_string(
        "vgg16:pretrained=false,batch=8,scale=0.5,weights_path=/tmp/w.pt,layers=[features.3,classifier.4],x=null"
    )
    assert name == "vgg16"
    assert options == {
        "pretrained": False,
        "batch": 8,
        "scale": 0.5,
        "weights_path": "/tmp/w.pt",
        "layers": ["features.3", "classifier.4"],
        "x": None,
    }


def test_quoted_value_keeps_commas() -> None:
    assert parse_spec_string('accuracy:label="a,b"') == ("accuracy", {"label": "a,b"})


@pytest.mark.parametrize("bad", ["vgg16:pretrained", ":x=1", "vgg16:a=1,a=2", "vgg16:layers=[a,b"])
def test_malformed_strings_fail_clearly(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_spec_string(bad)
