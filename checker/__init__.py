"""dmalint: a trace-driven conformance checker for Windows driver DMA usage."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dmalint")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
