"""Sessions: ``nox`` runs lint and tests; ``nox -s demo`` runs the embedded demo, ``-s build``
builds the wheelhouse, ``-s docs`` the documentation site, ``-s benchmarks`` prints the figures."""

from __future__ import annotations

import glob
import os
import shutil
import sys

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True  # a missing Python fails the run, never skips it

# the Python that runs nox, whichever 3.11+ it is (an older one fails to install facebench, loudly);
# `nox --force-python 3.13` picks another
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
PACKAGES = ("./facebench-core", "./facebench-models", "./facebench-tasks", "./plugins-example")
# torch and torchvision are installed first and explicitly; override for another build.
TORCH = os.environ.get("FACEBENCH_TORCH", "torch==2.14.1 torchvision==0.29.1").split()
DOCS = ("mkdocs-material", "mkdocstrings[python]")
QUIET_MKDOCS = {"NO_MKDOCS_2_WARNING": "1"}


def install_facebench(session: nox.Session) -> None:
    session.install(*TORCH)
    session.install(*PACKAGES)
    # the ray executor (its tests and benchmark) and extract's file formats (h5py, pyarrow, rsatoolbox)
    session.install("./facebench-core[ray,extract]")
    # facenet-pytorch, a reference only (facenet embeddings, MTCNN and the shipped MTCNN weights
    # are compared with it); it pins an old torch, so without its dependencies.
    session.install("--no-deps", "facenet-pytorch")
    session.install("requests")  # facenet_pytorch imports it at load time


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Install the four packages (not editable) and run the whole test suite."""
    install_facebench(session)
    # tests/release: setuptools builds the wheels offline, mkdocs the docs site, and the noxfile
    # itself is checked with nox; playwright drives Debian's chromium (from .ci/run) for tests/report
    session.install("pytest", "pytest-xdist", "nox", "setuptools>=77", "playwright", *DOCS)
    # one worker per core; each test file stays on one worker (conftest.py groups them)
    parallel = ["-n", "auto", "--dist", "loadgroup"]
    session.run("pytest", *parallel, *session.posargs, env={"HF_HUB_OFFLINE": "1", **QUIET_MKDOCS})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Install and run ``facebench demo`` on the embedded stimuli."""
    install_facebench(session)
    session.run("facebench", "demo", *session.posargs)


@nox.session(python=PYTHON)
def benchmarks(session: nox.Session) -> None:
    """Print the speed figures of ``benchmarks/``."""
    install_facebench(session)
    for script in sorted(os.listdir("benchmarks")):
        if script.endswith(".py"):
            session.run("python", f"benchmarks/{script}")


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Wheels and sdists of the four packages in one wheelhouse, ``dist/``, checked by twine."""
    session.install("build", "twine")
    shutil.rmtree("dist", ignore_errors=True)
    for package in PACKAGES:
        session.run("python", "-m", "build", "--outdir", "dist", package)
    session.run("twine", "check", "--strict", *sorted(glob.glob("dist/*")))


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site (MkDocs Material, API reference by mkdocstrings), built strictly."""
    session.install(*DOCS)
    session.run("mkdocs", "build", "--strict", *session.posargs, env=QUIET_MKDOCS)
