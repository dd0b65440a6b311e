"""Errors raised by the gateway.

SealpostError
└── GatewayError
    └── ConfigError        invalid configuration (flags or environment)
"""

from __future__ import annotations

from sealpost.errors import SealpostError


class GatewayError(SealpostError):
    """Base of the gateway's errors."""


class ConfigError(GatewayError):
    """The gateway's configuration is invalid; lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))

    def explain(self) -> str:
        """Each problem on its own line."""
        return "invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems)
