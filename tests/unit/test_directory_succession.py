"""Hand-overs of the directory key: both keys sign, a pin of any key of the chain follows."""

from __future__ import annotations

import pytest

from sealpost.crypto import keyrecords
from sealpost.crypto.errors import CryptoError, KeyRecordError, LimitError, SignatureError
from sealpost.crypto.keyrecords import DirectoryPin, VerifiedKey
from sealpost.crypto.keys import PrivateKeys
from sealpost.v1 import keys_pb2

NOW_S = 1_800_000_000
NOW_MS = NOW_S * 1000
DAY = 86_400


def directory_record(keys: PrivateKeys, start: int = NOW_S - DAY) -> keys_pb2.KeyRecord:
    return keyrecords.issue_directory_record(
        keys, subject="sealpost-directory", not_before=start, not_after=start + 3650 * DAY
    )


def verified(record: keys_pb2.KeyRecord, keys: PrivateKeys) -> VerifiedKey:
    return keyrecords.verify_directory_record(record, DirectoryPin(keys.signing_key), now_ms=NOW_MS)


def device_record(issuer: PrivateKeys, issuer_record: keys_pb2.KeyRecord) -> keys_pb2.KeyRecord:
    device = PrivateKeys.generate()
    return keyrecords.issue_key_record(
        purpose=keyrecords.RELATIVE_DEVICE,
        subject="account-1",
        encryption_key=device.encryption_key,
        signing_key=device.signing_key,
        not_before=NOW_S - DAY,
        not_after=NOW_S + DAY,
        directory_keys=issuer,
        directory_key_id=verified(issuer_record, issuer).id,
    )


class Chain:
    """Three directory keys, A handing over to B, B to C."""

    def __init__(self) -> None:
        self.keys = [PrivateKeys.generate() for _ in range(3)]
        self.records = [directory_record(k) for k in self.keys]
        self.successions = [
            keyrecords.issue_succession(
                self.keys[i],
                self.records[i],
                self.keys[i + 1],
                self.records[i + 1],
                effective_at=NOW_S,
            )
            for i in range(2)
        ]

    def current(self, pin: PrivateKeys) -> VerifiedKey:
        return keyrecords.verify_directory_record(
            self.records[-1],
            DirectoryPin(pin.signing_key),
            now_ms=NOW_MS,
            successions=self.successions,
        )


@pytest.mark.parametrize("pinned", [0, 1, 2])
def test_a_client_pinned_to_any_key_of_the_chain_reaches_the_current_directory(
    pinned: int,
) -> None:
    chain = Chain()
    current = chain.current(chain.keys[pinned])
    assert current.signing_key == chain.keys[2].signing_key
    assert [p.signing_key for p in current.predecessors] == [
        chain.keys[0].signing_key,
        chain.keys[1].signing_key,
    ]


def test_what_an_earlier_key_signed_verifies_under_the_current_directory() -> None:
    chain = Chain()
    old_device = device_record(chain.keys[0], chain.records[0])
    current = chain.current(chain.keys[2])
    key = keyrecords.verify_key_record(
        old_device, current, now_ms=NOW_MS, purpose=keyrecords.RELATIVE_DEVICE
    )
    assert key.issuer_key_id == current.predecessors[0].id
    # Without the hand-overs the current directory does not know the earlier key.
    alone = verified(chain.records[2], chain.keys[2])
    with pytest.raises(KeyRecordError, match="not issued by this directory"):
        keyrecords.verify_key_record(
            old_device, alone, now_ms=NOW_MS, purpose=keyrecords.RELATIVE_DEVICE
        )


def test_the_current_directory_revokes_what_an_earlier_key_signed() -> None:
    chain = Chain()
    old_device = device_record(chain.keys[0], chain.records[0])
    current = chain.current(chain.keys[0])
    revocation = keyrecords.issue_revocation(
        key_id=keyrecords.key_record_id(old_device.body),
        revoked_at=NOW_S - 10,
        reason="lost",
        directory_keys=chain.keys[2],
        directory_key_id=current.id,
    )
    with pytest.raises(KeyRecordError, match="revoked"):
        keyrecords.verify_key_record(
            old_device,
            current,
            now_ms=NOW_MS,
            revocations=[revocation],
            purpose=keyrecords.RELATIVE_DEVICE,
        )


def test_a_pin_outside_the_chain_is_refused() -> None:
    chain = Chain()
    with pytest.raises(KeyRecordError, match="does not carry the pinned key"):
        chain.current(PrivateKeys.generate())
    # A replacement without a hand-over (a compromised key) leaves old pins behind.
    with pytest.raises(KeyRecordError, match="does not carry the pinned key"):
        keyrecords.verify_directory_record(
            chain.records[2], DirectoryPin(chain.keys[0].signing_key), now_ms=NOW_MS
        )


def test_a_hand_over_only_the_old_key_signed_is_refused() -> None:
    """A stranger's key cannot join the chain by signing a hand-over from itself."""
    chain = Chain()
    stranger = PrivateKeys.generate()
    stranger_record = directory_record(stranger)
    forged = keyrecords.issue_succession(
        stranger, stranger_record, PrivateKeys.generate(), chain.records[0], effective_at=NOW_S
    )
    with pytest.raises(SignatureError):
        keyrecords.verify_directory_record(
            chain.records[2],
            DirectoryPin(chain.keys[2].signing_key),
            now_ms=NOW_MS,
            successions=[forged, *chain.successions],
        )


def test_a_hand_over_only_the_new_key_signed_is_refused() -> None:
    chain = Chain()
    intruder = PrivateKeys.generate()
    intruder_record = directory_record(intruder)
    forged = keyrecords.issue_succession(
        PrivateKeys.generate(), chain.records[2], intruder, intruder_record, effective_at=NOW_S
    )
    with pytest.raises(SignatureError):
        keyrecords.verify_directory_record(
            intruder_record,
            DirectoryPin(chain.keys[0].signing_key),
            now_ms=NOW_MS,
            successions=[*chain.successions, forged],
        )


def test_a_chain_with_a_gap_or_a_wrong_end_is_refused() -> None:
    chain = Chain()
    with pytest.raises(KeyRecordError, match="do not follow one another"):
        keyrecords.verify_directory_record(
            chain.records[2],
            DirectoryPin(chain.keys[2].signing_key),
            now_ms=NOW_MS,
            successions=list(reversed(chain.successions)),
        )
    with pytest.raises(KeyRecordError, match="do not end at the current directory"):
        keyrecords.verify_directory_record(
            chain.records[1],
            DirectoryPin(chain.keys[1].signing_key),
            now_ms=NOW_MS,
            successions=chain.successions,
        )


def test_a_hand_over_to_the_same_key_is_refused() -> None:
    keys = PrivateKeys.generate()
    first, second = directory_record(keys), directory_record(keys, start=NOW_S - 2 * DAY)
    same = keyrecords.issue_succession(keys, first, keys, second, effective_at=NOW_S)
    with pytest.raises(KeyRecordError, match="same key"):
        keyrecords.verify_succession(same)


def test_a_tampered_hand_over_is_refused() -> None:
    chain = Chain()
    succession = keys_pb2.DirectorySuccession()
    succession.CopyFrom(chain.successions[0])
    body = keys_pb2.DirectorySuccessionBody.FromString(succession.body)
    body.effective_at += 1
    succession.body = body.SerializeToString(deterministic=True)
    with pytest.raises(SignatureError):
        keyrecords.verify_succession(succession)
    with pytest.raises(CryptoError):
        keyrecords.parse_succession(b"\xff" * 10)


def test_chains_are_bounded() -> None:
    chain = Chain()
    with pytest.raises(LimitError):
        keyrecords.verify_directory_record(
            chain.records[2],
            DirectoryPin(chain.keys[2].signing_key),
            now_ms=NOW_MS,
            successions=[chain.successions[0]] * (keyrecords.MAX_SUCCESSIONS + 1),
        )


def test_the_two_signatures_are_domain_separated() -> None:
    chain = Chain()
    previous_digest, next_digest = keyrecords.directory_succession_digests(
        chain.successions[0].body
    )
    assert previous_digest != next_digest
    assert previous_digest != keyrecords.key_record_signed_digest(chain.successions[0].body)
