"""``sealpost relative``: register a device, request contacts, send and read messages.

Every command works on one profile folder (``--profile``, env SEALPOST_PROFILE), whose
key file is encrypted under a passphrase (env SEALPOST_PASSPHRASE, or asked for without
echo). Output is for people, or JSON with ``--json``. Nothing printed here can name
where a detainee is held: the gateway never tells a relative.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from sealpost.clients._cli import (
    DirectoryKey,
    JsonOutput,
    cli_app,
    directory_key_bytes,
    emit,
    fail,
    report,
    run,
)
from sealpost.clients._grpc import Endpoint
from sealpost.clients._problems import ExitCode, Problem
from sealpost.clients._text import enum_word
from sealpost.clients.relative import attachments as _attachments
from sealpost.clients.relative.notice import review_notice
from sealpost.clients.relative.receipts import VerifiedReceipt
from sealpost.clients.relative.sdk import (
    Contact,
    ContactStatus,
    InboxMessage,
    RelativeClient,
    connect,
    register,
)
from sealpost.crypto.envelope import MESSAGE_ID_BYTES, Part
from sealpost.crypto.keyrecords import DirectoryPin
from sealpost.crypto.passphrase import KDF_INTERACTIVE, KDF_MODERATE
from sealpost.i18n import LANGUAGES, SOURCE_LANGUAGE, UnknownLanguageError, language_from
from sealpost.v1 import common_pb2

T = TypeVar("T")

DEFAULT_PROFILE = Path("~/.sealpost/relative")
INBOX_FOLDER = "inbox"

app = cli_app(
    help=(
        "Relatives and lawyers: register a device, request contacts, send and read messages.\n\n"
        "Messages are encrypted on this computer; the gateway only ever sees ciphertext. "
        "Authorised staff of the institution may read messages under the law, except mail "
        "with verified lawyers (see `sealpost relative notice`)."
    ),
    no_args_is_help=True,
)

ProfileFolder = Annotated[
    Path,
    typer.Option(
        "--profile",
        envvar="SEALPOST_PROFILE",
        help="Folder of your profile (device keys, encrypted under your passphrase).",
    ),
]
Language = Annotated[
    str | None,
    typer.Option(
        "--language",
        help="Language of the review notice: nl, en, ar, tr or pl (default: SEALPOST_LANGUAGE, "
        "else the locale, else English).",
        show_default=False,
    ),
]


def _language(flag: str | None) -> str:
    """The relative's language: --language, SEALPOST_LANGUAGE, the locale, else English."""
    try:
        return language_from(LANGUAGES, flag, os.environ)
    except UnknownLanguageError as exc:
        raise typer.BadParameter(str(exc), param_hint="--language") from exc


# --------------------------------------------------------------------------- building blocks


def _passphrase(*, new: bool = False) -> str:
    """SEALPOST_PASSPHRASE, or asked for without echo (twice for a new profile)."""
    given = os.environ.get("SEALPOST_PASSPHRASE")
    if given:
        return given
    prompt = "Choose a passphrase for the profile" if new else "Passphrase of the profile"
    answer: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=new)
    return answer


def _session(
    profile: Path,
    action: Callable[[RelativeClient], T],
    *,
    show_notice: Callable[[str], None] | None = None,
    language: str = SOURCE_LANGUAGE,
) -> T:
    """Open the profile, sign in, run ``action``, close; errors become one clear line."""

    def body() -> T:
        client = connect(
            profile.expanduser(), _passphrase(), show_notice=show_notice, language=language
        )
        try:
            return action(client)
        finally:
            client.close()

    return run(body)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "detaineeId": contact.detainee_id,
        "contactId": contact.contact_id,
        "status": enum_word(common_pb2.ContactStatus, contact.state),
        "privileged": contact.privileged,
        "deliverable": contact.deliverable,
        "mailboxKeyId": contact.mailbox.id.hex() if contact.mailbox else None,
    }


def _contact_line(contact: Contact) -> str:
    line = f"{contact.detainee_id}  {contact.state.label}"
    if contact.privileged:
        line += "  privileged: no screener can open this mail"
    if contact.state is ContactStatus.REQUESTED:
        line += "  waiting for the institution's decision"
    elif contact.state is ContactStatus.EXPIRED:
        line += "  no decision was made in time: check the id you were given and ask again"
    elif contact.state is ContactStatus.APPROVED and not contact.deliverable:
        line += "  mailbox closed: new messages cannot be delivered"
    return line


def _receipt_json(receipt: VerifiedReceipt) -> dict[str, Any]:
    return {
        "verified": True,
        "logIndex": receipt.leaf_index,
        "treeSize": receipt.tree_size,
        "rootHash": receipt.root_hash.hex(),
        "treeHeadAt": _iso(receipt.head_timestamp_ms),
    }


def _message_id(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value.strip())
    except ValueError:
        raw = b""
    if len(raw) != MESSAGE_ID_BYTES:
        raise typer.BadParameter(
            f"a message id is {2 * MESSAGE_ID_BYTES} hexadecimal digits", param_hint="MESSAGE_ID"
        )
    return raw


# --------------------------------------------------------------------------- commands


@app.command()
def init(
    name: Annotated[
        str,
        typer.Option(
            "--name", help="Your name as the detainee and staff will see it (any script)."
        ),
    ],
    gateway: Annotated[
        str,
        typer.Option(
            "--gateway", envvar="SEALPOST_GATEWAY", help="Gateway address host:port (public port)."
        ),
    ],
    ca_file: Annotated[
        Path,
        typer.Option(
            "--ca-file",
            envvar="SEALPOST_CA_FILE",
            help="The gateway's CA certificate (PEM), to check the gateway's TLS certificate.",
        ),
    ],
    directory_key: DirectoryKey,
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
    unsafe_fast_kdf: Annotated[
        bool,
        typer.Option(
            "--unsafe-fast-kdf",
            hidden=True,
            help="Cheaper passphrase hashing (Argon2id INTERACTIVE); for tests only.",
        ),
    ] = False,
) -> None:
    """Register this device: a new account, its keys kept in an encrypted profile."""
    pin = directory_key_bytes(directory_key)
    try:
        ca_pem = ca_file.read_bytes()
        ca_pem.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {ca_file}: {exc}", param_hint="--ca-file") from exc
    if b"-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise typer.BadParameter(f"{ca_file} holds no PEM certificate", param_hint="--ca-file")
    folder = profile.expanduser()

    def create() -> RelativeClient:
        return register(
            folder,
            _passphrase(new=True),
            endpoint=Endpoint(gateway, ca_pem),
            pin=DirectoryPin(pin),
            display_name=name,
            kdf=KDF_INTERACTIVE if unsafe_fast_kdf else KDF_MODERATE,
        )

    client = run(create)
    try:
        emit(
            json_output,
            {
                "accountId": client.account_id,
                "keyId": client.key_id.hex(),
                "profile": str(folder),
                "gateway": gateway,
            },
            f"Registered: account {client.account_id}, device key {client.key_id.hex()[:16]}...\n"
            f"Profile saved in {folder}, encrypted under your passphrase. Keep the passphrase "
            "safe: nobody can recover it.\n"
            "Next: sealpost relative request-contact DETAINEE_ID",
        )
    finally:
        client.close()


@app.command()
def contacts(profile: ProfileFolder = DEFAULT_PROFILE, json_output: JsonOutput = False) -> None:
    """Your contacts and where each request stands."""
    listed = _session(profile, lambda client: client.contacts())
    emit(
        json_output,
        {"contacts": [_contact_json(c) for c in listed]},
        "\n".join(_contact_line(c) for c in listed)
        or "no contacts yet: ask with `sealpost relative request-contact DETAINEE_ID`",
    )


@app.command("request-contact")
def request_contact(
    detainee_id: Annotated[str, typer.Argument(help="The detainee's id, as they shared it.")],
    relationship: Annotated[
        str, typer.Option(help="How you are related, for the approving officer.")
    ] = "",
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Ask to correspond with a detainee; the institution approves or rejects."""
    contact = _session(profile, lambda client: client.request_contact(detainee_id, relationship))
    emit(
        json_output,
        _contact_json(contact),
        f"contact with {contact.detainee_id}: {contact.state.label}"
        + (
            " (the institution decides; check `sealpost relative contacts` later)"
            if contact.state is ContactStatus.REQUESTED
            else ""
        ),
    )


def _read_text(text: str | None, text_file: Path | None) -> str:
    if text is not None and text_file is not None:
        raise typer.BadParameter("give --text or --text-file, not both")
    if text_file is None:
        return text or ""
    try:
        if str(text_file) == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        return text_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(
            f"cannot read {text_file} as UTF-8 text: {exc}", param_hint="--text-file"
        ) from exc


@app.command()
def send(
    detainee_id: Annotated[str, typer.Argument(help="The detainee to write to.")],
    text: Annotated[
        str | None, typer.Option("--text", "-t", help="The message, in any language.")
    ] = None,
    text_file: Annotated[
        Path | None,
        typer.Option("--text-file", help="Read the message from a UTF-8 file ('-': stdin)."),
    ] = None,
    attach: Annotated[
        list[Path] | None,
        typer.Option("--attach", "-a", help="A photo or PDF to attach (repeat for more)."),
    ] = None,
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
    language: Language = None,
) -> None:
    """Send a message with optional photos and PDFs; its receipt is verified in the log.

    Before the first message from a profile, the review notice is shown.
    """
    chosen = _language(language)
    body = _read_text(text, text_file)
    parts: list[Part] = run(
        lambda: [_attachments.attachment_from_file(path) for path in attach or []]
    )
    notices: list[str] = []

    def deliver(client: RelativeClient) -> VerifiedReceipt:
        receipt = client.send(detainee_id, body, parts)
        return receipt

    def show(notice: str) -> None:
        notices.append(notice)
        # People read it before anything else; with --json it is also in the output.
        typer.echo(f"{notice}\n", err=json_output)

    receipt = _session(profile, deliver, show_notice=show, language=chosen)
    names = [p.filename for p in parts]
    emit(
        json_output,
        {
            "messageId": receipt.message_id.hex(),
            "detaineeId": detainee_id,
            "acceptedAt": _iso(receipt.accepted_at_ms),
            "attachments": names,
            "receipt": _receipt_json(receipt),
            "notice": notices[0] if notices else None,
        },
        f"sent message {receipt.message_id.hex()} to {detainee_id}"
        + (f" with {len(names)} attachment(s)" if names else "")
        + f"\nreceipt verified: entry {receipt.leaf_index} of the gateway's signed log "
        f"(tree of {receipt.tree_size} entries)",
    )


def _save(message: InboxMessage, folder: Path) -> list[tuple[Part, Path]]:
    """Write a reply's text and attachments under ``folder/<message id>/``."""
    target = folder / message.message_id.hex()
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    (target / "message.txt").write_text(message.text, encoding="utf-8")
    saved = []
    used = {"message.txt"}
    for index, part in enumerate(message.attachments, start=1):
        name = _attachments.safe_filename(part.filename, index, part.content_type)
        if name in used:
            name = f"{index}-{name}"
        used.add(name)
        path = target / name
        path.write_bytes(part.data)
        saved.append((part, path))
    return saved


@app.command()
def inbox(
    save_to: Annotated[
        Path | None,
        typer.Option(help="Folder for replies and their attachments [default: PROFILE/inbox]."),
    ] = None,
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """New replies since last time; each is saved with its attachments, then acknowledged."""
    folder = (save_to or profile / INBOX_FOLDER).expanduser()

    def read(client: RelativeClient) -> list[tuple[InboxMessage, list[tuple[Part, Path]]]]:
        received = []
        for message in client.inbox():
            saved = _save(message, folder)
            client.acknowledge(message)  # only now does the profile move past it
            received.append((message, saved))
        return received

    received = _session(profile, read)
    blocks = [
        "\n".join(
            [
                f"From {message.detainee_id}, {_time(message.accepted_at_ms)} "
                f"(message {message.message_id.hex()}):",
                message.text,
                *(f"  attachment saved: {path}" for _part, path in saved),
            ]
        )
        for message, saved in received
    ]
    emit(
        json_output,
        {
            "messages": [
                {
                    "messageId": m.message_id.hex(),
                    "detaineeId": m.detainee_id,
                    "acceptedAt": _iso(m.accepted_at_ms),
                    "text": m.text,
                    "attachments": [
                        {
                            "filename": part.filename,
                            "contentType": part.content_type,
                            "size": len(part.data),
                            "path": str(path),
                        }
                        for part, path in saved
                    ],
                }
                for m, saved in received
            ],
            "savedTo": str(folder),
        },
        "\n\n".join(blocks) or "no new replies",
    )


@app.command()
def status(
    message_id: Annotated[str, typer.Argument(help="The id `send` printed (32 hex digits).")],
    profile: ProfileFolder = DEFAULT_PROFILE,
    json_output: JsonOutput = False,
) -> None:
    """Whether a message you sent was delivered (why not only where the regime tells it)."""
    raw = _message_id(message_id)
    found = _session(profile, lambda client: client.message_status(raw))
    result: dict[str, Any] = {
        "messageId": raw.hex(),
        "status": enum_word(common_pb2.DeliveryStatus, found.status),
    }
    text = f"{raw.hex()}: {found.status.label}"
    if found.reason_label:
        result["withholdReason"] = enum_word(common_pb2.WithholdReason, found.withhold_reason)
        text += f" (withheld after review: {found.reason_label})"
    emit(json_output, result, text)


@app.command()
def receipts(profile: ProfileFolder = DEFAULT_PROFILE, json_output: JsonOutput = False) -> None:
    """Check again every receipt of the messages sent from this profile.

    Each must prove, with a signed tree head, that the gateway logged the message.
    """
    checks = _session(profile, lambda client: client.check_receipts())
    rows = []
    lines = []
    for check in checks:
        record = check.record
        row: dict[str, Any] = {
            "messageId": record.message_id.hex(),
            "detaineeId": record.detainee_id,
            "acceptedAt": _iso(record.accepted_at_ms),
            "verified": check.receipt is not None,
        }
        head = f"{record.message_id.hex()}  to {record.detainee_id}  {_time(record.accepted_at_ms)}"
        if check.receipt is not None:
            row.update(_receipt_json(check.receipt))
            lines.append(
                f"{head}  verified: entry {check.receipt.leaf_index} "
                f"of a signed tree of {check.receipt.tree_size}"
            )
        elif check.error is not None:
            row["problem"] = check.error.reason
            lines.append(f"{head}  NOT VERIFIED: {check.error.reason}")
        rows.append(row)
    emit(json_output, {"receipts": rows}, "\n".join(lines) or "no messages sent yet")
    failed = [c.error for c in checks if c.error is not None]
    for error in failed[1:]:
        report(Problem("receipt_not_verified", error.explain(), ExitCode.NOT_VERIFIED))
    if failed:
        fail(failed[0])


@app.command()
def notice(language: Language = None) -> None:
    """What every relative is told before the first message: who may read it, and when not."""
    typer.echo(run(lambda: review_notice(_language(language))))
