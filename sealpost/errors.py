"""The root of every Sealpost error.

Each part has one error tree in its own ``errors.py`` whose root derives from
``SealpostError``; foreign errors (hvac, SQLAlchemy, grpc) are wrapped at the
boundary where they occur. Every error can explain itself to a user in one
sentence, without content, keys or tokens.
"""

from __future__ import annotations


class SealpostError(Exception):
    """Base of all Sealpost errors."""

    def explain(self) -> str:
        """A one-line explanation fit for a user or an operator."""
        return str(self) or self.__class__.__name__
