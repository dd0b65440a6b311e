"""A screener signs in with a second factor: OpenBao's login MFA with TOTP, for real.

An operator enrols the screener (`sealpost admin staff mfa`); the enrolment link goes to
an owner-only file. From then on the screener's sign-in without a code is refused with
words that say what is missing, a wrong code is refused, and the right code (computed
from the link, as an authenticator app does) signs in and the review queue opens. Staff
not enrolled sign in as before. The enrolment is recorded in the log like any staff
change, and reconcile matches it to the key server's audit log.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pyotp
import pytest

from sealpost._internal.stack import Stack, log_events
from sealpost.clients.scripted_day import audit_devices
from sealpost.crypto.logentry import LogAction
from sealpost.escrow import identity
from sealpost.escrow._transport import KeyServerConfig
from sealpost.escrow.errors import AuthenticationFailedError, SecondFactorRequiredError
from sealpost.v1 import audit_pb2
from tests.integration.test_admin_registry_cli import admin, ok, token_env
from tests.programs import sealpost

pytestmark = pytest.mark.integration

A = "pi-mfa"
PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_screener_signs_in_with_a_one_time_code(own_stack: Stack, tmp_path: Path) -> None:
    stack = own_stack
    config = KeyServerConfig(stack.openbao.address)
    operator = {
        "SEALPOST_KEY_SERVER_ADDRESS": stack.openbao.address,
        **token_env(stack, ["administrator"], ["*"]),
        "SEALPOST_KEY_SERVER_TOKEN": stack.openbao.root_token,
        "SEALPOST_NEW_PASSWORD": PASSWORD,
    }
    for name in ("mila.m", "otto.o"):
        screener = ("--role", "screener", "--institution", A)
        ok(admin(stack, operator, "--json", "staff", "add", name, *screener))
    link = tmp_path / "mila-totp.txt"
    enrolled = ok(admin(stack, operator, "--json", "staff", "mfa", "mila.m", "--out", str(link)))
    assert enrolled["recorded"] == 1
    assert stat.S_IMODE(os.stat(link).st_mode) == 0o600
    app = pyotp.parse_uri(link.read_text().strip())
    assert isinstance(app, pyotp.TOTP)

    # Through the command line: without a code, the words say what is missing; with it, in.
    common = {
        "SEALPOST_GATEWAY": stack.gateway.address,
        "SEALPOST_CA_FILE": str(stack.gateway.state_dir / "tls" / "ca.pem"),
        "SEALPOST_KEY_SERVER_ADDRESS": stack.openbao.address,
        "SEALPOST_USER": "mila.m",
        "SEALPOST_PASSWORD": PASSWORD,
    }
    refused = sealpost("review", "queue", "--language", "en", env=common)
    assert refused.returncode == 1, refused.stderr
    assert "one-time code" in refused.stderr
    assert "Traceback" not in refused.stderr
    signed_in_code = app.now()
    signed_in = sealpost(
        "review", "queue", "--json", env={**common, "SEALPOST_TOTP": signed_in_code}
    )
    assert signed_in.returncode == 0, signed_in.stderr

    # A code is good once (the key server refuses it again); no code, or a wrong one, fails.
    with pytest.raises(SecondFactorRequiredError):
        identity.login_staff(config, "mila.m", PASSWORD)
    used = signed_in_code
    with pytest.raises(AuthenticationFailedError):
        identity.login_staff(config, "mila.m", PASSWORD, one_time_code=lambda: used)
    wrong = str((int(app.now()) + 1) % 1_000_000).zfill(6)
    with pytest.raises(AuthenticationFailedError):
        identity.login_staff(config, "mila.m", PASSWORD, one_time_code=lambda: wrong)
    # Staff who were not enrolled sign in as before.
    assert identity.login_staff(config, "otto.o", PASSWORD).token

    # The enrolment is a staff change in the log, with the paths it wrote.
    (change,) = [
        e
        for e in log_events(stack)
        if e.action is LogAction.ADMIN_ACTION
        and e.extra.get("target") == "mila.m"
        and "identity/mfa" in e.extra.get("paths", "")
    ]
    assert change.extra["kind"] == "staff_change"
    # Reconcile matches the enrolment's writes at the key server to that log entry.
    national = stack.staff(["administrator"], ["*"])
    stack.record_key_server_actions(national)
    national.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))
    matched = sealpost(
        "audit", "reconcile", "--database-url", stack.gateway.database_url,
        *audit_devices(stack), "--directory-key", stack.pin.signing_key.hex(),
    )  # fmt: skip
    assert matched.returncode == 0, matched.stdout + matched.stderr

    # Enrolling twice needs --reset; the link file is never overwritten.
    again = admin(stack, operator, "staff", "mfa", "mila.m", "--out", str(link))
    assert again.code == 2
