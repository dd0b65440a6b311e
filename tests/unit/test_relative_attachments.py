"""Attachments: photos and PDFs are read with their type; anything else is refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealpost.clients.relative.attachments import (
    attachment_from_file,
    check_attachment,
    safe_filename,
)
from sealpost.clients.relative.errors import AttachmentError
from sealpost.crypto.envelope import Part
from sealpost.crypto.limits import Limits

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)
PDF = b"%PDF-1.7\n" + bytes(100)
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(100)
HEIC = b"\x00\x00\x00\x18ftypheic" + bytes(100)


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("foto.jpg", JPEG, "image/jpeg"),
        ("FOTO.JPEG", JPEG, "image/jpeg"),
        ("scan.png", PNG, "image/png"),
        ("brief van de rechtbank.pdf", PDF, "application/pdf"),
        ("صورة.webp", WEBP, "image/webp"),
        ("IMG_0001.HEIC", HEIC, "image/heic"),
    ],
)
def test_photos_and_pdfs_are_read_with_their_type(
    tmp_path: Path, name: str, data: bytes, content_type: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    part = attachment_from_file(path)
    assert part.content_type == content_type
    assert part.filename == name
    assert part.data == data


def test_refusals(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hallo")
    (tmp_path / "program.exe").write_bytes(b"MZ")
    (tmp_path / "noextension").write_bytes(JPEG)
    (tmp_path / "renamed.jpg").write_bytes(PDF)
    (tmp_path / "fake.pdf").write_bytes(b"<html>")
    (tmp_path / "big.jpg").write_bytes(JPEG + bytes(2000))
    (tmp_path / "folder.pdf").mkdir()
    with pytest.raises(AttachmentError, match="only photos"):
        attachment_from_file(tmp_path / "notes.txt")
    with pytest.raises(AttachmentError, match="only photos"):
        attachment_from_file(tmp_path / "program.exe")
    with pytest.raises(AttachmentError, match="only photos"):
        attachment_from_file(tmp_path / "noextension")
    with pytest.raises(AttachmentError, match="does not look like a JPEG photo"):
        attachment_from_file(tmp_path / "renamed.jpg")
    with pytest.raises(AttachmentError, match="does not look like a PDF document"):
        attachment_from_file(tmp_path / "fake.pdf")
    with pytest.raises(AttachmentError, match="at most"):
        attachment_from_file(
            tmp_path / "big.jpg", Limits(max_part_bytes=1024, max_total_bytes=4096)
        )
    with pytest.raises(AttachmentError, match="cannot read"):
        attachment_from_file(tmp_path / "missing.pdf")
    with pytest.raises(AttachmentError, match="not a file"):
        attachment_from_file(tmp_path / "folder.pdf")


def test_parts_built_in_memory_are_checked_by_type_and_bytes() -> None:
    check_attachment(Part("image/jpeg", b"\xff\xd8\xff\xe0 a photo", "a.jpg"))
    check_attachment(Part("application/pdf; version=1.7", b"%PDF-1.7\n...", "a.pdf"))
    with pytest.raises(AttachmentError):
        check_attachment(Part("application/x-msdownload", b"MZ", "a.exe"))
    # A declared type is not enough: the bytes must be of it.
    with pytest.raises(AttachmentError, match="contents do not match"):
        check_attachment(Part("image/jpeg", b"MZ\x90\x00" + bytes(60), "a.jpg"))
    with pytest.raises(AttachmentError, match="contents do not match"):
        check_attachment(Part("application/pdf", b"<!DOCTYPE html><html></html>", "a.pdf"))


def test_received_names_are_made_safe() -> None:
    assert safe_filename("foto.jpg", 1, "image/jpeg") == "foto.jpg"
    assert safe_filename("رسالة.pdf", 1, "application/pdf") == "رسالة.pdf"
    assert safe_filename("", 2, "image/png") == "attachment-2.png"
    assert safe_filename("..", 3, "application/pdf") == "attachment-3.pdf"
    # The saved name always ends in the extension of the type the bytes are.
    assert safe_filename(".hidden", 1, "image/jpeg") == "hidden.jpg"
    assert safe_filename("report.exe", 1, "image/jpeg") == "report.jpg"
    assert safe_filename("page.html", 1, "application/pdf") == "page.pdf"
    assert "/" not in safe_filename("../../etc/passwd", 1, "application/pdf")
    assert "\u202e" not in safe_filename("gpj.\u202eexe", 1, "image/jpeg")
    assert safe_filename("x" * 300, 4, "text/plain") == "attachment-4.txt"
