"""Every error dmalint raises: one root class, each error carrying where it happened.

The command line catches `DmalintError` at the top and prints `str(error)`; anything else
that escapes is an internal error (a bug in dmalint), never shown as a traceback unless
`--debug` asks for it.
"""

from __future__ import annotations

from model.location import SourceLocation

__all__ = [
    "DmalintError",
    "EmptyTraceError",
    "EtlError",
    "InputError",
    "NoCaptureEventsError",
    "NoTracesError",
    "NotUtf8Error",
    "ResourceError",
    "RuleFileError",
    "TraceNotFoundError",
    "TraceSyntaxError",
    "UnsupportedVersionError",
    "UsageError",
]


class DmalintError(Exception):
    """The root of dmalint's own errors."""

    def __init__(self, message: str, location: SourceLocation | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __reduce__(self) -> tuple:
        # pickled whole (for --jobs workers): the subclasses' own fields included
        return (_rebuild, (type(self), dict(self.__dict__)))

    def __str__(self) -> str:
        if self.location is None:
            return f"error: {self.message}"
        loc = self.location
        where = loc.path if loc.line == 0 else f"{loc.path}:{loc.line}:{loc.column}"
        return f"{where}: error: {self.message}"


def _rebuild(cls: type, state: dict) -> DmalintError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class UsageError(DmalintError):
    """The command line asks for something that cannot be done (bad option, bad output path)."""


class ResourceError(DmalintError):
    """A file dmalint ships (grammar, DDI table, rules) is missing or broken."""


class RuleFileError(DmalintError):
    """Rule files that do not validate: `problems` lists every one, each at file:line:col."""

    def __init__(self, problems: list) -> None:
        super().__init__(f"{len(problems)} problem(s) in rule files")
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


class InputError(DmalintError):
    """A trace could not be checked at all: the run fails with exit status 2."""


class TraceNotFoundError(InputError):
    """A path on the command line does not exist or cannot be read."""


class NoTracesError(InputError):
    """A directory on the command line holds no `*.trace` or `*.etl` file."""


class NotUtf8Error(InputError):
    """A trace is not UTF-8 text."""

    def __init__(self, message: str, location: SourceLocation, offset: int) -> None:
        super().__init__(message, location)
        self.offset = offset


class UnsupportedVersionError(InputError):
    """`@dmatrace N` names a version this dmalint does not read."""


class EmptyTraceError(InputError):
    """A trace with no event in it: nothing to check, so it is never reported clean."""


class EtlError(InputError):
    """An .etl file that is not one, or is truncated or corrupt; `offset` is the byte it breaks at."""

    def __init__(self, message: str, location: SourceLocation, offset: int) -> None:
        super().__init__(message, location)
        self.offset = offset


class NoCaptureEventsError(EmptyTraceError):
    """An .etl file with no event of the capture kit's provider; `providers` counts what it holds."""

    def __init__(self, message: str, location: SourceLocation, providers: dict[str, int] | None = None) -> None:
        super().__init__(message, location)
        self.providers = dict(providers or {})


class TraceSyntaxError(DmalintError):
    """One line of a trace does not parse. Checking goes on with the next line.

    `text` is the line as read, `expected` what the grammar would have accepted at
    `location.column` (readable names, sorted).
    """

    def __init__(
        self,
        message: str,
        location: SourceLocation,
        text: str,
        expected: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, location)
        self.text = text
        self.expected = expected
