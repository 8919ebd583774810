"""The ``facebench`` command. Start-up stays light: torch and model libraries load only in the
commands that need them."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from facebench.errors import FacebenchError
from facebench.plugins import core_version
from facebench.registry import KINDS, Registry, get_registry

LIST_SECTIONS = ("models", "tasks", "metrics", "plugins")


class FacebenchGroup(click.Group):
    """Prints a :class:`FacebenchError` as one line on stderr and exits with status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FacebenchError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=FacebenchGroup)
@click.version_option(core_version(), prog_name="facebench")
def main() -> None:
    """Compare neural networks with human face perception."""


def registry_listing(registry: Registry) -> dict[str, list[dict[str, Any]]]:
    """The JSON shape of ``facebench list --json``."""
    listing: dict[str, list[dict[str, Any]]] = {
        f"{kind}s": [entry.to_dict() for entry in registry.entries(kind)] for kind in KINDS
    }
    for (kind, name), plugins in registry.conflicts.items():
        for item in listing[f"{kind}s"]:
            if item["name"] == name:
                item["conflict"] = plugins
    listing["plugins"] = [info.to_dict() for info in registry.plugins]
    return listing


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Left-aligned columns, a header and a rule."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        for row in [header, ["-" * w for w in widths], *rows]
    ]
    return "\n".join(lines)


@main.command("list")
@click.argument("section", required=False, type=click.Choice(LIST_SECTIONS))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def list_command(section: str | None, as_json: bool) -> None:
    """List registered models, tasks, metrics and plugins (or one SECTION)."""
    listing = registry_listing(get_registry())
    sections = [section] if section else list(LIST_SECTIONS)
    if as_json:
        click.echo(json.dumps({name: listing[name] for name in sections}, indent=2))
        return
    for name in sections:
        click.secho(f"{name.capitalize()}:", bold=True)
        if name == "plugins":
            rows = [[p["name"], p["version"], p["status"], p.get("error") or ""] for p in listing[name]]
            header = ["name", "version", "status", "error"]
        else:
            rows = [
                [
                    e["name"] + (" (CONFLICT: " + ", ".join(e["conflict"]) + ")" if "conflict" in e else ""),
                    e["plugin"],
                    e["description"],
                ]
                for e in listing[name]
            ]
            header = ["name", "plugin", "description"]
        click.echo(format_table(rows, header) if rows else "  (none installed)")
        click.echo()


@main.command("layers")
@click.argument("model")
def layers_command(model: str) -> None:
    """Print the extractable layer names of MODEL (NAME or NAME:key=value,...)."""
    from facebench.options import parse_spec_string

    name, options = parse_spec_string(model)
    built = get_registry().create("model", name, **options)
    for layer in built.layer_names():
        click.echo(layer)
