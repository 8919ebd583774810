"""Errors facebench raises for bad input: each says what was wrong, where, and what to do."""

from __future__ import annotations


class FacebenchError(Exception):
    """Base class: the CLI prints these as one clean message and exits with status 2."""


class UnknownNameError(FacebenchError, KeyError):
    """A model, task, metric or layer name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginConflictError(FacebenchError):
    """Two plugins registered the same name."""


class ConfigError(FacebenchError, ValueError):
    """An option, experiment file or command-line value that cannot be used."""


class DataError(FacebenchError, ValueError):
    """A pairs file, column or image that cannot be used."""


class WeightsError(FacebenchError, RuntimeError):
    """Model weights that cannot be downloaded, found or trusted."""


class ExecutorError(FacebenchError, RuntimeError):
    """An executor's worker (e.g. a Ray actor) failed or died while embedding a model."""
