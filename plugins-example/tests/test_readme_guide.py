"""The plugin guide's model classes run as printed in README.md."""

from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).parents[1] / "README.md"


def guide_classes() -> dict[str, object]:
    """Execute the guide's python blocks that define a BaseModel subclass, in order."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    namespace: dict[str, object] = {}
    for block in blocks:
        if "(BaseModel):" in block:
            exec(compile(block, str(README), "exec"), namespace)  # our own README
    return namespace


def test_the_forwarding_example_is_a_complete_class() -> None:
    namespace = guide_classes()
    model = namespace["MyDeepNet"](depth=34, extract_layers=["layer4"], device="cpu")
    assert model.name == "my-net" and model.depth == 34
    assert model.model_options()["depth"] == 34  # the option is part of the cache key
    assert model.identity != namespace["MyDeepNet"](depth=18, device="cpu").identity
    out = model.get_output(torch.zeros(1, 3, 64, 64))
    assert out["layer4"].shape == (1, 512 * 2 * 2)
    assert len(list(model.model.layer3)) == 6  # a ResNet-34
