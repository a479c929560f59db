"""dmalint: a trace-driven conformance checker for Windows driver DMA usage.

The pipeline, one stage a subpackage, each importing only the stages before it (the
architecture test, tests/test_architecture.py, holds them to it):

    reading/    text (or ETL) -> records            (with `model` for the records' types)
    language/   rule files -> checks
    gating/     selection, suppressions, baselines, configuration
    engine/     records + model + checks -> findings, for one trace and for a run
    reporters/  findings -> text, JSON, JSON Lines, SARIF, JUnit, HTML
    cli.py      the `dmalint` command

Below all of them: `errors` (the exception classes, under one root), `findings` (what a
rule finds) and `resources` (where the shipped grammar and rules are).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dmalint")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
