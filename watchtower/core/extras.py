"""Optional dependencies: what needs an extra says which one, instead of failing on an import.

A core install (`pip install watchtower`) runs the daemon; the Spark pipeline and the DLQ Delta table's
per-reason counts need the `spark` extra (pyspark, pyarrow), the Flink job the `flink` extra.
"""

from __future__ import annotations

from importlib.util import find_spec


class MissingExtra(ImportError, ValueError):
    """A feature's optional dependencies are not installed. A ValueError too: it is a setup problem the
    command line reports in one line, like bad config."""


def missing(*modules: str) -> list[str]:
    """The top-level modules of `modules` that cannot be imported here (nothing is imported)."""
    return [m for m in modules if find_spec(m) is None]


def require_extra(extra: str, *modules: str, what: str) -> None:
    """Raise MissingExtra naming `what`, the missing modules and the pip command, unless all import."""
    gone = missing(*modules)
    if gone:
        raise MissingExtra(
            f"{what} needs {', '.join(gone)}, which the '{extra}' extra installs: pip install 'watchtower[{extra}]'"
        )
