"""Where intake resumes: the cursor never passes a message the terminal has not settled.

The gateway streams, from a cursor, the messages still ACCEPTED, in order, and keeps
each one ACCEPTED until a terminal submits or rejects it (docs/terminal.md, "The intake
loop and fail-closed behaviour"). So the cursor the loop persists may pass a message
only once it is settled; streaming again from that cursor, after a crash or once the
key server is back, then yields exactly what is still to do: nothing lost, nothing
taken twice.

The rule, batch by batch over one stream read from the cursor:

- a batch whose every message is settled (submitted, rejected, or skipped as known
  malformed) moves the cursor to its last message;
- a batch with a message still waiting (for the key server, or for a mailbox key)
  leaves the cursor where it is, and so does every later batch of the same stream,
  settled or not: the cursor stays before the first waiting message;
- a fresh stream from the cursor starts over: what waited before is read again first.

Pure: no I/O and no clock. The intake loop reads and persists ``cursor``.
"""

from __future__ import annotations


class IntakeCursor:
    """The persisted intake cursor, and whether the stream being read holds it in place."""

    def __init__(self, cursor: str = "") -> None:
        """Resume from ``cursor`` (the persisted one; "" for the start)."""
        self._cursor = cursor
        self._held = False

    def __repr__(self) -> str:
        """Cursor and hold; cursors are opaque positions, not content."""
        return f"IntakeCursor({self._cursor!r}, held={self._held})"

    @property
    def cursor(self) -> str:
        """Where to stream from, and what to persist: every message up to it is settled."""
        return self._cursor

    @property
    def held(self) -> bool:
        """True when a message read from the current stream waits: the cursor stays put."""
        return self._held

    def new_stream(self) -> str:
        """A fresh stream from ``cursor`` begins (nothing read from it waits yet); its start."""
        self._held = False
        return self._cursor

    def batch_done(self, last_cursor: str, *, waiting: int) -> bool:
        """A batch of the current stream, ending at ``last_cursor``, has been worked through.

        ``waiting``: how many of its messages are still to be submitted (neither submitted
        nor rejected). True when the cursor moved to ``last_cursor``.
        """
        if waiting < 0:
            raise ValueError("a batch cannot have fewer than no waiting messages")
        if waiting:
            self._held = True
        if self._held:
            return False
        self._cursor = last_cursor
        return True
