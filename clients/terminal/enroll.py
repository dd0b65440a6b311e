"""Enrolment: turn an issued certificate folder into an encrypted terminal profile.

``sealpost admin terminal issue --out DIR`` leaves terminal-key.pem, terminal.pem and
ca.pem in DIR. Enrolment checks that they belong together, reaches the gateway with
them (which also checks the pinned directory key), and either registers a new
institution key (the institution's first terminal) or takes over the key exported from
an enrolled terminal of the same institution. The profile is written before the key
is registered, so a registered key is never one whose secret was not saved.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from sealpost.clients._grpc import ClientError
from sealpost.clients.terminal.client import wall_clock_ms
from sealpost.clients.terminal.errors import (
    EnrollmentError,
    InstitutionKeyError,
    TerminalRevokedError,
)
from sealpost.clients.terminal.profile import (
    ProfileSecrets,
    ProfileSettings,
    TerminalProfile,
)
from sealpost.crypto.errors import CryptoError
from sealpost.crypto.keys import PrivateKeys
from sealpost.crypto.passphrase import KDF_MODERATE, KdfParams
from sealpost.escrow.bootstrap import BootstrapSettings
from sealpost.escrow.client import KeyServerConfig
from sealpost.i18n import _
from sealpost.v1 import keys_pb2

KEY_FILE = "terminal-key.pem"
CERTIFICATE_FILE = "terminal.pem"
CA_FILE = "ca.pem"
#: Bytes of a pinned directory key (Ed25519 public key).
PIN_BYTES = 32


@dataclass(frozen=True, repr=False)
class IssuedCertificate:
    """A terminal's key and certificate as the gateway's CA issued them."""

    key_pem: bytes
    certificate_pem: bytes
    ca_pem: bytes
    institution_id: str
    terminal_id: str
    not_after: dt.datetime

    def __repr__(self) -> str:
        """No key material."""
        return f"IssuedCertificate({self.institution_id!r}, {self.terminal_id!r})"


def _name(certificate: x509.Certificate, oid: x509.ObjectIdentifier, missing: str) -> str:
    """The one subject name of ``oid``; EnrollmentError saying ``missing`` otherwise."""
    values = certificate.subject.get_attributes_for_oid(oid)
    if len(values) != 1 or not isinstance(values[0].value, str) or not values[0].value:
        raise EnrollmentError(missing)
    return values[0].value


def read_certificate_folder(folder: Path) -> IssuedCertificate:
    """Read and check the files `sealpost admin terminal issue` wrote."""
    try:
        key_pem = (folder / KEY_FILE).read_bytes()
        certificate_pem = (folder / CERTIFICATE_FILE).read_bytes()
        ca_pem = (folder / CA_FILE).read_bytes()
    except OSError as exc:
        raise EnrollmentError(
            _(
                "cannot read {file}: {reason}; expected {key}, {certificate} and {ca} from "
                "`sealpost admin terminal issue`",
                file=exc.filename,
                reason=exc.strerror,
                key=KEY_FILE,
                certificate=CERTIFICATE_FILE,
                ca=CA_FILE,
            )
        ) from exc
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        ca = x509.load_pem_x509_certificate(ca_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise EnrollmentError(
            _("the files in {folder} are not PEM keys and certificates", folder=folder)
        ) from exc
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, public) != certificate.public_key().public_bytes(
        der, public
    ):
        raise EnrollmentError(
            _("{key} is not the key of {certificate}", key=KEY_FILE, certificate=CERTIFICATE_FILE)
        )
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise EnrollmentError(
            _("{certificate} was not issued by {ca}", certificate=CERTIFICATE_FILE, ca=CA_FILE)
        ) from exc
    now = dt.datetime.now(dt.UTC)
    if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc:
        raise EnrollmentError(_("the terminal certificate is not valid now (expired?)"))
    return IssuedCertificate(
        key_pem=key_pem,
        certificate_pem=certificate_pem,
        ca_pem=ca_pem,
        institution_id=_name(
            certificate, NameOID.ORGANIZATION_NAME, _("the certificate names no institution")
        ),
        terminal_id=_name(
            certificate, NameOID.COMMON_NAME, _("the certificate names no terminal id")
        ),
        not_after=certificate.not_valid_after_utc,
    )


@dataclass(frozen=True)
class EnrollmentResult:
    """The new profile and what happened to the institution key."""

    profile: TerminalProfile
    #: True when this enrolment registered a new institution key.
    registered_key: bool


def _check_settings(key_server: str, token: str, pin: bytes, prefix: str) -> None:
    try:
        KeyServerConfig(key_server)
        BootstrapSettings(prefix=prefix)
    except ValueError as exc:
        raise EnrollmentError(str(exc)) from exc
    if not token:
        raise EnrollmentError(_("the terminal's key-server token is required"))
    if len(pin) != PIN_BYTES:
        raise EnrollmentError(
            _(
                "the directory key is {size} bytes ({digits} hex digits)",
                size=PIN_BYTES,
                digits=2 * PIN_BYTES,
            )
        )


def enroll(
    folder: Path,
    passphrase: str,
    certificates: Path,
    *,
    gateway: str,
    key_server: str,
    key_server_token: str,
    directory_pin: bytes,
    key_server_ca: str = "",
    escrow_prefix: str = "sealpost",
    institution_key: tuple[str, bytes, PrivateKeys] | None = None,
    kdf: KdfParams = KDF_MODERATE,
) -> EnrollmentResult:
    """Create the terminal profile in ``folder`` and settle the institution key.

    ``institution_key`` is (institution id, key record id, keys) exported from another
    terminal of the institution; without it a new key is registered, which is refused
    when the institution already has mailboxes wrapped to an existing key.
    """
    issued = read_certificate_folder(certificates)
    _check_settings(key_server, key_server_token, directory_pin, escrow_prefix)
    TerminalProfile.check_new(folder, passphrase)
    keys = institution_key[2] if institution_key else PrivateKeys.generate()
    key_id = institution_key[1] if institution_key else b""
    settings = ProfileSettings(
        institution_id=issued.institution_id,
        terminal_id=issued.terminal_id,
        gateway=gateway,
        key_server=key_server,
        directory_pin=directory_pin,
        certificate_pem=issued.certificate_pem,
        ca_pem=issued.ca_pem,
        institution_key_id=key_id,
        key_server_ca=key_server_ca,
        escrow_prefix=escrow_prefix,
    )
    if institution_key and institution_key[0] != issued.institution_id:
        raise InstitutionKeyError(
            _(
                "the exported key belongs to {owner}, this terminal to {institution}",
                owner=institution_key[0],
                institution=issued.institution_id,
            )
        )
    profile = TerminalProfile.create(
        folder,
        passphrase,
        settings,
        ProfileSecrets(issued.key_pem, keys, key_server_token),
        kdf=kdf,
    )
    try:
        registered = _settle_institution_key(profile, institution_key is not None)
    except BaseException:
        # Nothing was registered, or the registration failed: the new profile is not kept.
        with contextlib.suppress(FileNotFoundError):
            profile.path.unlink()
        raise
    return EnrollmentResult(profile, registered)


def _settle_institution_key(profile: TerminalProfile, imported: bool) -> bool:
    client = profile.client()
    try:
        client.directory()  # reaches the gateway with the certificate; checks the pin
        if imported:
            _check_imported_key(profile)
            return False
        if client.mailbox_key_count():
            raise InstitutionKeyError(
                _(
                    "{institution} already has an institution key: export it from an enrolled "
                    "terminal (`sealpost terminal export-key`) and enrol with --institution-key",
                    institution=profile.settings.institution_id,
                )
            )
        verified = client.register_institution_key(profile.settings.institution_id)
        profile.update(institution_key_id=verified.id)
        return True
    except ClientError as exc:
        if exc.code == grpc.StatusCode.UNAUTHENTICATED:
            raise TerminalRevokedError(exc.message) from exc
        raise
    except CryptoError as exc:
        raise EnrollmentError(
            _(
                "the gateway's directory does not match the directory key given: {why}",
                why=exc.explain(),
            )
        ) from exc
    finally:
        client.close()


def _check_imported_key(profile: TerminalProfile) -> None:
    """The exported key must be this institution's published, unrevoked institution key."""
    client = profile.client()
    try:
        key_id = profile.settings.institution_key_id
        records = client.key_records([key_id])
        if key_id not in records:
            raise InstitutionKeyError(_("the exported institution key is not published"))
        verified = client.verify(records[key_id], keys_pb2.KEY_PURPOSE_INSTITUTION, wall_clock_ms())
        keys = profile.secrets.institution_keys
        if (
            verified.subject != profile.settings.institution_id
            or verified.encryption_key != keys.encryption_key
            or verified.signing_key != keys.signing_key
        ):
            raise InstitutionKeyError(_("the exported key does not match its published record"))
        if client.institution_key_revoked():
            raise InstitutionKeyError(_("the exported institution key has been revoked"))
    except CryptoError as exc:
        raise InstitutionKeyError(
            _("the exported institution key: {why}", why=exc.explain())
        ) from exc
    finally:
        client.close()
