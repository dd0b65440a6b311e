"""Structured JSON logs that are safe by construction.

Every record passes an allow-list: fields not named in ``ALLOWED_FIELDS`` are
dropped before rendering, so a careless ``log.info("x", body=...)`` can never
put message content, keys, tokens or personal data into a log file. Dropped
field names are reported (names only) so the mistake is visible in review.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Final, TextIO

import structlog

#: The only fields a log record may carry. Identifiers here are opaque ids
#: (message, detainee, institution), never names or content.
ALLOWED_FIELDS: Final = frozenset(
    {
        # structlog's own
        "event",
        "level",
        "timestamp",
        "logger_name",
        # request context
        "request_id",
        "method",
        "code",
        "duration_ms",
        "role",
        # process and configuration
        "address",
        "port",
        "web_port",
        "metrics_port",
        "pid",
        "service",
        "version",
        "database",
        "status",
        "grace_seconds",
        "signal",
        # domain ids and counts (opaque, no content)
        "message_id",
        "detainee_id",
        "institution_id",
        "state",
        "count",
        "log_index",
        "batch_size",
        "attempt",
        "delay_seconds",
        "tree_size",
        "error_type",
        "reason",
        "dropped_fields",
    }
)

LEVELS: Final = ("debug", "info", "warning", "error")


def drop_unlisted_fields(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Structlog processor: keep allow-listed fields, name the ones dropped."""
    dropped = sorted(key for key in event_dict if key not in ALLOWED_FIELDS)
    for key in dropped:
        del event_dict[key]
    if dropped:
        event_dict["dropped_fields"] = dropped
    return event_dict


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured.

    A command run in-process (a test's CLI runner) swaps stderr and closes its own
    afterwards; a logger bound to that stream would fail on every later line.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """Send JSON lines at ``level`` and above to ``stream`` (the current stderr by default)."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            drop_unlisted_fields,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream or _CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger that tags records with ``name``."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(logger_name=name)
    return logger
