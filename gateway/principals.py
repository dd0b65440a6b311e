"""Who is calling: the authenticated principal of one call.

Roles are the columns of the authorisation table (gateway/authz.py). A staff
member may hold several roles; an institution scope of ``*`` means every
institution (national staff).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

ALL_INSTITUTIONS: Final = "*"


class Role(enum.Enum):
    """Every kind of caller the gateway distinguishes."""

    ANONYMOUS = "anonymous"
    RELATIVE = "relative"
    TERMINAL = "terminal"
    SCREENER = "screener"
    APPROVER = "approver"
    ADMINISTRATOR = "administrator"
    AUDITOR = "auditor"
    #: Checks escrowed keys on a sample the log draws (docs/audit.md, "Escrow audit").
    ESCROW_AUDITOR = "escrow-auditor"


STAFF_ROLES: Final = frozenset(
    {Role.SCREENER, Role.APPROVER, Role.ADMINISTRATOR, Role.AUDITOR, Role.ESCROW_AUDITOR}
)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (or the anonymous one)."""

    roles: frozenset[Role]
    #: relative:<account>, terminal:<id>, staff:<name>, or anonymous.
    actor: str
    account_id: str = ""
    key_id: bytes = b""
    terminal_id: str = ""
    #: Institutions this caller may act for; a terminal has exactly one.
    institutions: frozenset[str] = field(default_factory=frozenset)
    #: A staff member's name as the key server knows it (for the record).
    staff_name: str = ""
    #: The key server's entity id of a staff member (the ``sub`` of the identity token):
    #: what its audit log names, so grants and decrypts can be matched.
    staff_subject: str = ""

    def has(self, role: Role) -> bool:
        """True when the caller holds ``role``."""
        return role in self.roles

    def covers(self, institution_id: str) -> bool:
        """True when the caller may act for ``institution_id``."""
        return ALL_INSTITUTIONS in self.institutions or institution_id in self.institutions

    @property
    def national(self) -> bool:
        """True for staff whose scope is every institution."""
        return ALL_INSTITUTIONS in self.institutions

    @property
    def institution_id(self) -> str:
        """A terminal's one institution."""
        if len(self.institutions) != 1 or self.national:
            raise ValueError("not scoped to exactly one institution")
        return next(iter(self.institutions))


ANONYMOUS: Final = Principal(roles=frozenset({Role.ANONYMOUS}), actor="anonymous")


def relative(account_id: str, key_id: bytes) -> Principal:
    """A relative (or correspondent) signed in with one device key."""
    return Principal(
        roles=frozenset({Role.RELATIVE}),
        actor=f"relative:{account_id}",
        account_id=account_id,
        key_id=key_id,
    )


def terminal(terminal_id: str, institution_id: str) -> Principal:
    """An institution terminal authenticated by its client certificate."""
    return Principal(
        roles=frozenset({Role.TERMINAL}),
        actor=f"terminal:{terminal_id}",
        terminal_id=terminal_id,
        institutions=frozenset({institution_id}),
    )


def staff(
    name: str, roles: frozenset[Role], institutions: frozenset[str], subject: str = ""
) -> Principal:
    """A staff member authenticated by a key-server identity token."""
    if not roles or not roles <= STAFF_ROLES:
        raise ValueError("staff roles only")
    return Principal(
        roles=roles,
        actor=f"staff:{name}",
        institutions=institutions,
        staff_name=name,
        staff_subject=subject,
    )
