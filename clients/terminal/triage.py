"""Triage at intake: a sealed summary for every message that waits for a screener (SPEC P16).

Only here, inside the institution's zone, and only for what the gateway put in the
screening queue (QUEUED: the regime or a screening order gives a legal basis) and that
is not privileged by the terminal's own reading of the envelope. The terminal decrypts
such a message with the data key it opened for escrow anyway, runs the triage detectors
with the institution's and the detainee's watch lists, and hands the gateway a
:class:`~sealpost.clients.triage.Summary` sealed at the key server under the triage key:
counts per detector, a weight and a language, padded to one size, never text of the
message. The plaintext is dropped when the batch is done and never written anywhere.

Triage never holds anything up. A message that cannot be triaged (the triage key or the
gateway refuses, a part does not decode) waits in the queue without a summary, in age
order, like one without findings; intake goes on. Watch lists are read from the gateway
(sealed) and opened at most every ``refresh_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sealpost._internal.logs import get_logger
from sealpost.clients._grpc import ClientError
from sealpost.clients.terminal.client import Intake, TerminalClient
from sealpost.clients.triage import (
    Report,
    Summary,
    WatchList,
    decode_watch_list,
    summary_context,
    triage,
    watch_list_context,
)
from sealpost.clients.triage.errors import TriageError
from sealpost.crypto import envelope as crypto_envelope
from sealpost.crypto.envelope import Part
from sealpost.crypto.errors import CryptoError
from sealpost.escrow.client import SealingClient
from sealpost.escrow.errors import EscrowError

_log = get_logger("sealpost.terminal.triage")

#: A detainee's list is named by the detainee; the institution's own list by this.
INSTITUTION_LIST: str = "institution"


@dataclass
class TriageOutcome:
    """What one batch's triage did (counts only: nothing about what was found)."""

    sealed: int = 0
    #: Messages left without a summary (they wait in age order).
    failed: int = 0


@dataclass
class IntakeTriage:
    """Triage of the messages a batch put in the screening queue; see the module docstring."""

    client: TerminalClient
    sealer: SealingClient
    refresh_seconds: float = 300.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    #: The detectors; a test passes its own to see what reached them.
    run: Callable[[Sequence[Part], Sequence[WatchList]], Report] = field(default=triage, repr=False)
    #: By detainee id; the institution's own list under "".
    _lists: dict[str, WatchList] = field(default_factory=dict, repr=False)
    _read_at: float | None = field(default=None, repr=False)

    def __call__(self, queued: Sequence[tuple[Intake, bytes]]) -> TriageOutcome:
        """Triage ``queued`` (intake items with their data keys) and hand in the summaries."""
        outcome = TriageOutcome()
        if not queued:
            return outcome
        try:
            self._refresh()
        except (ClientError, EscrowError, TriageError) as exc:
            _log.warning("triage watch lists unavailable", error=type(exc).__name__)
            outcome.failed = len(queued)
            return outcome
        summaries: list[tuple[bytes, bytes]] = []
        for item, dek in queued:
            if item.privileged:
                continue  # never triaged (SPEC P4, P16), whatever the gateway said
            try:
                parts = crypto_envelope.decrypt_with_dek(
                    item.envelope, dek, item.sender, now_ms=item.accepted_at_ms
                ).parts
                summaries.append((item.message_id, self._summary(parts, item.detainee_id)))
            except (CryptoError, TriageError) as exc:
                _log.warning("triage failed", error=type(exc).__name__)
                outcome.failed += 1
            finally:
                parts = ()  # the plaintext: no longer than the detectors need it
        return self._hand_in(summaries, outcome)

    def reply(self, message_id: bytes, detainee_id: str, parts: Sequence[Part]) -> bool:
        """Triage a detainee's reply the gateway queued for a screener; True if handed in.

        The terminal composed it, so its plaintext is here already; only a reply the
        gateway put in the screening queue (a screening order covering outbound mail, or a
        regime that screens all) comes here.
        """
        outcome = TriageOutcome()
        try:
            self._refresh()
            summary = self._summary(parts, detainee_id)
        except (ClientError, EscrowError, TriageError) as exc:
            _log.warning("triage failed", error=type(exc).__name__)
            return False
        return self._hand_in([(message_id, summary)], outcome).sealed == 1

    def _summary(self, parts: Sequence[Part], detainee_id: str) -> bytes:
        return Summary.of(self.run(parts, self._for(detainee_id))).encode()

    def _hand_in(
        self, summaries: list[tuple[bytes, bytes]], outcome: TriageOutcome
    ) -> TriageOutcome:
        if not summaries:
            return outcome
        try:
            sealed = self.sealer.seal([(summary_context(m), s) for m, s in summaries])
            self.client.seal_triage([(m, c) for (m, _s), c in zip(summaries, sealed, strict=True)])
        except (ClientError, EscrowError) as exc:
            _log.warning("triage summaries not handed in", error=type(exc).__name__)
            outcome.failed += len(summaries)
            return outcome
        outcome.sealed += len(summaries)
        return outcome

    def _for(self, detainee_id: str) -> list[WatchList]:
        return [lst for key in ("", detainee_id) if (lst := self._lists.get(key))]

    def _refresh(self) -> None:
        now = self.clock()
        if self._read_at is not None and now - self._read_at < self.refresh_seconds:
            return
        records = self.client.watch_lists()
        opened = self.sealer.open(
            [(watch_list_context(r.institution_id, r.detainee_id), r.sealed) for r in records]
        )
        lists: dict[str, WatchList] = {}
        for record, plain in zip(records, opened, strict=True):
            name = record.detainee_id or INSTITUTION_LIST
            if plain is None:
                raise TriageError(f"the watch list {name!r} does not open")
            lists[record.detainee_id] = decode_watch_list(plain, name)
        self._lists = lists
        self._read_at = now
