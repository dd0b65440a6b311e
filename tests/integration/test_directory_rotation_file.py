"""The file-kept directory key replaced with `sealpost gateway rotate-directory-key`.

On a real gateway process and SQLite: the hand-over both keys sign is published, the old
key file is replaced, and after a restart a relative and a terminal pinned to the old key
go on while a relative given the new key trusts what the old key signed. A key file
whose directory key is not the published one is refused at start.
"""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from sealpost import cli as sealpost_cli
from sealpost._internal.devservers import DevServerError, gateway_directory_pin
from sealpost._internal.stack import Stack, approve_all, setup_institutions
from sealpost.crypto.keys import PrivateKeys

pytestmark = pytest.mark.integration

A = "pi-rotate"


def rotate(stack: Stack) -> str:
    done = CliRunner(env=dict.fromkeys(k for k in os.environ if k.startswith("SEALPOST_"))).invoke(
        sealpost_cli.app,
        [
            "gateway",
            "rotate-directory-key",
            "--state-dir",
            str(stack.gateway.state_dir),
            "--database-url",
            stack.gateway.database_url,
        ],
    )
    assert done.exit_code == 0, done.output
    return done.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_file_kept_directory_key_is_handed_over(stack: Stack) -> None:
    admin, terminals = setup_institutions(stack, [("d-rot-1", A, "regular")])
    old_pin = stack.pin
    anna = stack.relative("Anna")
    anna.request_contact("d-rot-1")
    approve_all(admin, A)
    anna.send("d-rot-1", "voor")

    stack.gateway.stop()
    output = rotate(stack)
    new_key = gateway_directory_pin(stack.gateway.state_dir)
    assert new_key != old_pin.signing_key
    assert new_key.hex() in output
    assert not (stack.gateway.state_dir / "gateway-keys.json.new").exists()
    stack.gateway.start()

    assert anna.trust().directory.signing_key == new_key  # the old pin followed
    assert anna.send("d-rot-1", "na").message_id
    bram = stack.relative("Bram")  # given the new key
    assert bram.pin.signing_key == new_key
    bram.request_contact("d-rot-1")
    approve_all(admin, A)
    assert bram.send("d-rot-1", "nieuw").message_id
    terminal = terminals[A]
    assert terminal.pin == old_pin
    assert len(terminal.take_in(terminal.intake(), stack.escrow_for(A))) == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_key_file_with_another_directory_key_is_refused_at_start(stack: Stack) -> None:
    stack.gateway.stop()
    path = stack.gateway.state_dir / "gateway-keys.json"
    document = json.loads(path.read_text())
    other = PrivateKeys.generate()
    document["directory"] = {
        "x25519_secret": other.x25519_secret.hex(),
        "ed25519_seed": other.ed25519_seed.hex(),
    }
    path.write_text(json.dumps(document))
    with pytest.raises(DevServerError):
        stack.gateway.start(timeout=15)
    log = stack.gateway.log_file.read_text()
    assert "rotate-directory-key" in log
