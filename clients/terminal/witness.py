"""The institution terminal as a witness of the gateway's transparency log (SPEC P13).

The terminal keeps the newest tree head it has seen in ``witness-state.json`` in its
profile folder (owner-only, replaced atomically, locked while a head is checked, so
the intake loop and the delivery desk can share it), checks every head it is shown
against it, and countersigns newer heads with its institution's key: the
KEY_PURPOSE_INSTITUTION record the directory signed, so anyone who pins the directory
can check the cosignature. The intake loop witnesses the gateway's newest head every
round (``IntakeSettings.witness_seconds``).

The stable entry point for the rest of the terminal::

    witness = for_terminal(client, profile.folder)
    head = witness.observe(signed_head)     # -> VerifiedTreeHead, or raises

``observe`` returns the verified head when it is of the one history this terminal has
seen (and cosigns it when it is newer); it raises ``CryptoError`` when the head does
not verify, ``ForkError`` or ``RollbackError`` when the gateway shows another history
or has rolled its log back, and ``ClientError`` when the gateway cannot be asked. The
rules and the state file are those of ``sealpost.clients.witness``, shared with
auditors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from sealpost.clients.terminal.client import TerminalClient
from sealpost.clients.witness import (
    FileWitnessStore,
    GatewayLog,
    Observation,
    Witness,
    WitnessKey,
    WitnessStore,
    wall_clock_ms,
)

__all__ = ["STATE_NAME", "Observation", "Witness", "for_terminal", "state_store"]

#: The terminal's witness state, beside its profile.
STATE_NAME: Final = "witness-state.json"


def state_store(folder: Path) -> FileWitnessStore:
    """The witness state file in a terminal's profile folder."""
    return FileWitnessStore(folder / STATE_NAME)


def for_terminal(
    client: TerminalClient,
    folder: Path | None = None,
    *,
    store: WitnessStore | None = None,
    clock: Callable[[], int] = wall_clock_ms,
) -> Witness:
    """The terminal's witness: its channel and pin, its institution key, its state file.

    Give the profile ``folder`` (the state file goes there) or a ``store``. Without a
    registered institution key the terminal checks and keeps heads but cannot cosign.
    """
    if store is None:
        if folder is None:
            raise ValueError("give the profile folder or a witness store")
        store = state_store(folder)
    key = None
    if client.institution_key_id:
        key = WitnessKey(client.institution_key_id, client.institution_keys.ed25519_seed)
    log = GatewayLog(lambda: client.channel, client.pin, clock=clock)
    return Witness(log, store, key, clock=clock)
