"""What a detainee is handed, in each of the five languages: slips, reply receipts, notices.

Each document is read back with pypdf: the labels are the catalogue's, the times are
Dutch local time, the detainee's name stands beside the id. Every document is also
rendered to PNG in test-output/documents/<kind>-<language>.png, for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pypdf
import pypdfium2
import pytest
from PIL import Image

from sealpost.clients.terminal.client import SentReply
from sealpost.clients.terminal.pdf import (
    DeliverySlip,
    ReplyReceipt,
    WithheldAttachment,
    WithholdingNotice,
    render_reply_receipt,
    render_slip,
    render_withholding_notice,
)
from sealpost.clients.terminal.reply import HandedInReply
from sealpost.crypto.envelope import Part
from sealpost.i18n import LANGUAGES, translator
from sealpost.v1 import common_pb2, log_pb2, terminal_pb2
from tests.conftest import REPO_ROOT

OUTPUT: Final = REPO_ROOT / "test-output" / "documents"
#: 06:45 UTC on a summer day is 08:45 in Amsterdam (CEST); in winter (CET) 07:45.
SENT: Final = dt.datetime(2026, 7, 14, 6, 45, tzinfo=dt.UTC)
WINTER: Final = dt.datetime(2026, 1, 14, 6, 45, tzinfo=dt.UTC)
PRINTED: Final = dt.datetime(2026, 7, 15, 9, 30, tzinfo=dt.UTC)
NAMES: Final = {
    "nl": "Kees van Dijk",
    "en": "John Smith",
    "ar": "Youssef El Amrani",
    "tr": "Yusuf Demir",
    "pl": "Łukasz Wiśniewski",
}
TEXT: Final = "Lieve papa,\nمرحبا يا أبي\nTot zondag!"  # noqa: RUF001 - Arabic is the point
MESSAGE_ID: Final = "0a1b2c3d" * 4


def _png(color: tuple[int, int, int]) -> bytes:
    data = io.BytesIO()
    Image.new("RGB", (60, 40), color).save(data, "PNG")
    return data.getvalue()


def slip(language: str, sent: dt.datetime = SENT) -> DeliverySlip:
    return DeliverySlip(
        institution_id="pi-noord",
        detainee_id="d-7",
        sender_name="Fatima El Amrani",
        sent_at=sent,
        printed_at=PRINTED,
        reference="pi-noord-20260715-0a1b2c3d",
        message_id=MESSAGE_ID,
        privileged=False,
        text=TEXT,
        attachments=(Part("image/png", _png((30, 120, 200)), "tuin.png"),),
        withheld=(WithheldAttachment(2, "report.exe", "image/jpeg", None, 1200),),
        detainee_name=NAMES[language],
        language=language,
    )


def receipt(
    language: str, state: common_pb2.MessageState.ValueType = common_pb2.MESSAGE_STATE_QUEUED
) -> ReplyReceipt:
    return ReplyReceipt(
        institution_id="pi-noord",
        detainee_id="d-7",
        recipient_name="Fatima El Amrani",
        handed_in_at=SENT,
        printed_at=PRINTED,
        reference="pi-noord-R20260714-0a1b2c3d",
        message_id=MESSAGE_ID,
        state=state,
        privileged=False,
        text="Dank je wel voor de foto's.\nشكرا جزيلا",  # noqa: RUF001 - Arabic is the point
        attachments=("tekening.png",),
        detainee_name=NAMES[language],
        language=language,
    )


def notice(language: str, *, inbound: bool = True) -> WithholdingNotice:
    return WithholdingNotice(
        institution_id="pi-noord",
        detainee_id="d-7",
        inbound=inbound,
        counterpart_name="Fatima El Amrani",
        accepted_at=SENT,
        withheld_at=SENT + dt.timedelta(hours=3),
        printed_at=PRINTED,
        reason=common_pb2.WITHHOLD_REASON_CRIME_PREVENTION,
        reference="pi-noord-W20260714-0a1b2c3d",
        message_id=MESSAGE_ID,
        detainee_name=NAMES[language],
        language=language,
    )


def _text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc")


def _readable(language: str, phrase: str, text: str) -> bool:
    """The phrase is in the text; shaped Arabic comes back reordered, so its letters must be."""
    if language == "ar":
        return set(phrase.replace(" ", "")) <= set(text)
    return phrase in text


def _check(language: str, text: str, phrases: list[str]) -> None:
    """Each phrase is on the page (a label may wrap onto a second line)."""
    flat = " ".join(text.split())
    for phrase in phrases:
        assert _readable(language, phrase, flat), (language, phrase)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_slip_is_in_the_detainees_language_with_amsterdam_time_and_name(
    language: str,
) -> None:
    words = translator("detainee", language)
    text = _text(render_slip(slip(language)))
    assert NAMES[language] in text
    assert "d-7" in text
    assert "8:45" in text  # Amsterdam summer time, never the UTC 06:45
    assert "6:45" not in text
    assert "+0000" not in text
    _check(
        language,
        text,
        [
            words.gettext("From"),
            words.gettext("Sent"),
            words.gettext("Delivery reference"),
            words.gettext("Not handed over"),
            words.gettext("All times are Dutch local time."),
        ],
    )
    if language != "ar":
        assert words.datetime(SENT) in text
        assert words.gettext("Message for {detainee}", detainee=f"{NAMES[language]} (d-7)") in text
    assert "Fatima El Amrani" in text
    assert "tuin.png" in text
    assert "report.exe" in text
    assert "pi-noord-20260715-0a1b2c3d" in text
    assert "Tot zondag!" in text


def test_winter_time_is_an_hour_from_utc() -> None:
    text = _text(render_slip(slip("nl", WINTER)))
    assert "14 jan 2026, 07:45" in text


def test_a_detainee_not_in_the_register_reads_dutch_by_id() -> None:
    plain = DeliverySlip(
        institution_id="pi-noord",
        detainee_id="d-9",
        sender_name="Anna",
        sent_at=SENT,
        printed_at=PRINTED,
        reference="pi-noord-20260715-0a1b2c3d",
        message_id=MESSAGE_ID,
        privileged=True,
        text="Hallo",
    )
    text = _text(render_slip(plain))
    assert "Bericht voor d-9" in text
    assert "Vertrouwelijke post" in text
    assert "14 jul 2026, 08:45" in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_reply_receipt_says_truthfully_where_the_reply_is(language: str) -> None:
    words = translator("detainee", language)
    queued = _text(render_reply_receipt(receipt(language)))
    sent = _text(render_reply_receipt(receipt(language, common_pb2.MESSAGE_STATE_RELEASED)))
    for text in (queued, sent):
        assert NAMES[language] in text
        assert "Fatima El Amrani" in text
        assert "8:45" in text
        assert "tekening.png" in text
        assert "Dank je wel voor de foto's." in text
        _check(language, text, [words.gettext("Receipt for your reply"), words.gettext("To")])
    waiting = words.gettext(
        "Not sent yet: your correspondence is screened, and a screener checks this reply "
        "before it goes. If it is withheld, you receive a written notice."
    )
    gone = words.gettext("Sent to {name}.", name="Fatima El Amrani")
    if language == "ar":
        assert set(waiting.replace(" ", "")) <= set(queued)
        return
    flat = " ".join(queued.split())
    assert waiting in flat
    assert gone not in flat
    assert gone in " ".join(sent.split())
    assert waiting not in " ".join(sent.split())


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_withholding_notice_names_the_message_the_reason_and_the_complaint(
    language: str,
) -> None:
    words = translator("detainee", language)
    text = _text(render_withholding_notice(notice(language)))
    flat = " ".join(text.split())
    assert NAMES[language] in text
    assert "Fatima El Amrani" in text
    assert "8:45" in text  # accepted
    assert "11:45" in text  # withheld three hours later
    assert "pi-noord-W20260714-0a1b2c3d" in text
    assert MESSAGE_ID in text
    # The Dutch legal terms stand in every language, so the detainee can name them.
    for term in ("beklag", "beklagcommissie", "klaagschrift", "maandcommissaris"):
        assert term in flat, (language, term)
    reason = words.gettext("Preventing or detecting criminal offences")
    _check(language, flat, [reason, words.gettext("How to complain")])
    reply = _text(render_withholding_notice(notice(language, inbound=False)))
    _check(language, reply, [words.gettext("Your reply was withheld")])


def test_the_notice_never_says_more_than_the_reason_category() -> None:
    unspecified = WithholdingNotice(
        **{**notice("en").__dict__, "reason": common_pb2.WITHHOLD_REASON_UNSPECIFIED}
    )
    text = " ".join(_text(render_withholding_notice(unspecified)).split())
    assert "No reason was recorded" in text


def _ink(image: Image.Image, top: float, bottom: float) -> tuple[float, float]:
    """The left and right end of the dark pixels in a band of the page, as fractions."""
    grey = image.convert("L")
    width, height = grey.size
    band = grey.crop((0, int(top * height), width, int(bottom * height)))
    box = band.point(lambda v: 255 if v < 128 else 0).getbbox()
    assert box is not None
    return box[0] / width, box[2] / width


KINDS: Final[dict[str, Callable[[str], bytes]]] = {
    "slip": lambda language: render_slip(slip(language)),
    "receipt": lambda language: render_reply_receipt(receipt(language)),
    "notice": lambda language: render_withholding_notice(notice(language)),
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_document_renders_for_a_person_to_look_at(kind: str, language: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    document = pypdfium2.PdfDocument(KINDS[kind](language))
    try:
        image = document[0].render(scale=1.5).to_pil()
    finally:
        document.close()
    path: Path = OUTPUT / f"{kind}-{language}.png"
    image.save(path)
    assert path.stat().st_size > 10_000
    # The title stands at the start of a line in the reading direction: the right
    # margin in Arabic, the left one otherwise.
    left, right = _ink(image, 0.07, 0.10)
    if language == "ar":
        assert right > 0.85
        assert left > 0.25
    else:
        assert left < 0.15


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang not in ("en", "ar")])
def test_no_english_is_left_on_a_page_for_unnamed_or_unknown_things(language: str) -> None:
    nameless = DeliverySlip(
        **{
            **slip(language).__dict__,
            "attachments": (Part("image/png", _png((200, 10, 10)), ""),),
            "withheld": (WithheldAttachment(2, "", "image/jpeg", None, 1),),
        }
    )
    unnamed_scan = ReplyReceipt(**{**receipt(language).__dict__, "attachments": ("",)})
    text = _text(render_slip(nameless)) + _text(render_reply_receipt(unnamed_scan))
    for english in ("unnamed", "unknown format", "photo", "attachment", "page"):
        assert english not in text.lower(), (language, english)


@pytest.mark.parametrize(
    ("state", "status", "waits"),
    [
        (common_pb2.MESSAGE_STATE_RELEASED, "sent", False),
        (common_pb2.MESSAGE_STATE_QUEUED, "awaiting_screening", True),
        (common_pb2.MESSAGE_STATE_UNSPECIFIED, "handed_in", False),
    ],
)
def test_a_reply_is_called_sent_only_when_the_gateway_let_it_through(
    state: common_pb2.MessageState.ValueType, status: str, waits: bool
) -> None:
    contact = terminal_pb2.DetaineeContact(display_name="Fatima El Amrani")
    handed = HandedInReply("d-7", SentReply(log_pb2.Receipt(), state, contact), "tekst")
    assert (handed.status, handed.waits_for_screening) == (status, waits)
