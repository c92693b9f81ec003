"""Sessions: tests per extra, lint, typecheck, bench. ``nox`` alone runs tests, lint, typecheck."""

from __future__ import annotations

import sys

import nox

nox.options.sessions = ["tests", "bridges", "example_adapter", "lint", "typecheck"]
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
EXTRAS = ["none", "mlflow", "wandb", "all"]
BRIDGES = "lightning,transformers,accelerate"
TORCH = "torch==2.13.0"
"""The CPU build of torch that lies on these machines' disk."""
ZENML = "zenml==0.98.*"


def install(
    session: nox.Session, *groups: str, extra: str = "none", lowest: bool = False, also: str = ""
) -> None:
    """The project with ``extra``, the dependency ``groups`` and ``also``, resolved together;
    ``lowest``: each requirement at the lowest version its floor allows (uv's lowest-direct),
    so the floors in pyproject.toml are versions the tests pass with."""
    options = ["--resolution=lowest-direct"] if lowest else []
    project = "." if extra == "none" else f".[{extra}]"
    requirements = [*nox.project.dependency_groups(PYPROJECT, *groups), *also.split()]
    session.install(*options, *requirements, project)


def install_torch(session: nox.Session) -> None:
    """torch with pip, before anything that needs it: only pip looks where the CPU build
    lies; uv (nox's installer) would download several GB of CUDA wheels instead."""
    python = f"{session.bin}/python"
    session.run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", TORCH,
                external=True)  # fmt: skip


# What depends on which extras are installed; the rest of the core's tests run in the
# sessions "none" (the core alone) and "all" (every extra beside it).
EXTRA_AWARE = ["tests/test_extras.py", "tests/test_import.py", "tests/test_registry.py"]


@nox.session
@nox.parametrize("extra", EXTRAS)
def tests(session: nox.Session, extra: str) -> None:
    """Run the test suite with one extra installed ("none": the core alone).

    "none", "mlflow" and "wandb" install the lowest versions the requirements allow;
    "all" the newest, beside ZenML 0.98 (whose pins trackstack's floors must admit),
    and runs the ZenML flavor's tests too.
    """
    groups = ["test", *(["test-mlflow"] if extra == "mlflow" else [])]
    if extra == "all":
        install(session, *groups, extra="all,zenml", also=ZENML)
        # Each adapter's suite runs in its own session; this one checks that the
        # extras install together and that every flavor is then available.
        arguments = ["--extras=all,zenml", "--ignore=tests/mlflow", "--ignore=tests/wandb"]
    else:
        install(session, *groups, extra=extra, lowest=True)
        arguments = [f"--extras={extra}"]
        if extra != "none":
            arguments += [f"tests/{extra}", *EXTRA_AWARE]
    session.run("pytest", *arguments, *session.posargs)


@nox.session
def bridges(session: nox.Session) -> None:
    """The framework bridges in real tiny trainings, with every flavor and fan-out."""
    install_torch(session)
    install(session, "test", "test-mlflow", extra=f"all,{BRIDGES}")
    tests = [f"tests/{bridge}" for bridge in BRIDGES.split(",")]
    session.run("pytest", f"--extras=all,{BRIDGES}", *tests, *EXTRA_AWARE, *session.posargs)


@nox.session
def example_adapter(session: nox.Session) -> None:
    """Install examples/trackstack-memory as a third party would and run the suite on it."""
    session.install(".[testing]", "./examples/trackstack-memory")
    session.chdir("examples/trackstack-memory")
    session.run("pytest", "tests", "-p", "no:cacheprovider")
    session.run(
        "pytest", "--pyargs", "trackstack.testing", "--trackstack-config", "memory.yaml",
        "-p", "no:cacheprovider",
    )  # fmt: skip


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Check types with mypy in strict mode, against every SDK the adapters use."""
    install_torch(session)
    install(session, "typecheck", "test-mlflow", extra=f"all,zenml,{BRIDGES}")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks in benchmarks/ and print their figures."""
    install_torch(session)
    install(session, "test", extra="all,lightning")
    session.run("python", "-m", "benchmarks", *session.posargs)
