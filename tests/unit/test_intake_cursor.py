"""The intake cursor's one rule: it never passes a message the terminal has not settled.

clients/terminal/cursor.py; the loop around it is tested in test_terminal_intake_loop.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealpost.clients.terminal.cursor import IntakeCursor


def test_a_settled_batch_moves_the_cursor_to_its_last_message() -> None:
    position = IntakeCursor()
    assert position.new_stream() == ""
    assert position.batch_done("200", waiting=0)
    assert position.cursor == "200"
    assert position.batch_done("230", waiting=0)
    assert position.cursor == "230"
    assert not position.held


def test_a_waiting_message_holds_the_cursor_before_its_batch() -> None:
    position = IntakeCursor("7")
    position.new_stream()
    assert not position.batch_done("9", waiting=1)
    assert position.cursor == "7"
    assert position.held


def test_a_submitted_message_after_a_waiting_one_does_not_move_the_cursor_past_it() -> None:
    position = IntakeCursor()
    position.new_stream()
    position.batch_done("1", waiting=0)  # message 1 submitted
    position.batch_done("2", waiting=1)  # message 2 waits for the key server
    assert not position.batch_done("3", waiting=0)  # message 3 submitted, privileged say
    assert not position.batch_done("250", waiting=0)
    assert position.cursor == "1"


def test_a_fresh_stream_from_the_held_cursor_moves_it_once_all_is_settled() -> None:
    position = IntakeCursor()
    position.new_stream()
    position.batch_done("2", waiting=1)
    # The stream from "" again yields only what is still ACCEPTED: the waiting message,
    # then whatever came after; once it is submitted, the cursor may move past all.
    assert position.new_stream() == ""
    assert not position.held
    assert position.batch_done("4", waiting=0)
    assert position.cursor == "4"


def test_a_stream_that_still_has_waiting_messages_holds_again() -> None:
    position = IntakeCursor("10")
    position.new_stream()
    position.batch_done("12", waiting=2)
    assert position.new_stream() == "10"
    assert not position.batch_done("12", waiting=1)
    assert position.cursor == "10"
    assert position.held


def test_a_batch_cannot_have_a_negative_count() -> None:
    with pytest.raises(ValueError, match="waiting"):
        IntakeCursor().batch_done("1", waiting=-1)


#: A stream of messages, each settled (False) or waiting (True), cut into batches.
_batches = st.lists(st.lists(st.booleans(), min_size=1, max_size=5), max_size=8)


@given(batches=_batches)
def test_the_cursor_never_passes_a_waiting_message(batches: list[list[bool]]) -> None:
    position = IntakeCursor()
    position.new_stream()
    number = 0
    waiting: list[int] = []
    for batch in batches:
        numbers = range(number + 1, number + 1 + len(batch))
        number += len(batch)
        waiting += [n for n, waits in zip(numbers, batch, strict=True) if waits]
        position.batch_done(str(number), waiting=sum(batch))
        reached = int(position.cursor or 0)
        assert all(reached < n for n in waiting)
    if not waiting:
        assert position.cursor == (str(number) if number else "")
    else:
        # It stops at the end of the last batch before the first waiting message.
        first = min(waiting)
        ends = [sum(len(b) for b in batches[: i + 1]) for i in range(len(batches))]
        assert int(position.cursor or 0) == max([0, *(end for end in ends if end < first)])
