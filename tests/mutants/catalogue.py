"""The mutants: one deliberate break per security check, with the tests that must catch it.

Each entry names the file, the exact original text (which must occur there exactly
once: tests/unit/test_mutants.py checks it on every unit run, so the list cannot rot
silently), its replacement, the SPEC property the check protects, what the broken
code lets through, and the tests that must fail. Keep the tests to the fewest that
kill the mutant: ``make mutants`` runs them once per mutant.
"""

from __future__ import annotations

from typing import Final

from tests.mutants.runner import Mutant

_AUTH = "tests/unit/test_auth.py"
_MATRIX = "tests/unit/test_authz_matrix.py"
_STATES = "tests/unit/test_states.py"
_POLICY = "tests/unit/test_policy.py"
_CONTACT_POLICY = "tests/unit/test_contact_policy.py"
_ENVELOPE = "tests/unit/test_envelope.py"
_VECTORS = "tests/unit/test_envelope_vectors.py"
_MERKLE = "tests/unit/test_merkle.py"
_LOGENTRY = "tests/unit/test_logentry.py"
_RECEIPTS = "tests/unit/test_relative_receipts.py"
_RELEASES = "tests/unit/test_terminal_releases.py"
_CURSOR = "tests/unit/test_intake_cursor.py"
_REPLAY = "tests/unit/test_replay.py"
_RECONCILE = "tests/unit/test_audit_reconcile.py"
_COSIGNATURE = "tests/unit/test_cosignature.py"
_WITNESS = "tests/unit/test_witness_client.py"
_NAMES = "tests/unit/test_names.py"
_WEB_GATE = "tests/unit/test_web_gate.py"
_WEB_APP = "tests/unit/test_webapp_serving.py"
_WEB_RELEASE = "tests/unit/test_webrelease.py"
_WEB_APP_AUDIT = "tests/unit/test_audit_webapp.py"
_DEVICES = "tests/integration/test_devices.py"
_KNOWN = "tests/integration/test_send_known_facts.py"
_NEWS = "tests/integration/test_news_mail.py"
_TRIAGE = "tests/unit/test_triage_sealed.py"
_SUCCESSION = "tests/unit/test_directory_succession.py"
_TRANSIT = "tests/unit/test_transit_signer.py"
_RETENTION = (
    "tests/integration/test_row_retention.py"
    "::test_settled_messages_are_deleted_and_the_log_still_verifies[sqlite]"
)
_WEB_RIGHTS = (
    "tests/integration/test_web_transport.py::"
    "test_the_rights_hold_over_both_transports_alike[/sealpost.v1.RelativeService/ListContacts]"
)

MUTANTS: Final[tuple[Mutant, ...]] = (
    # ------------------------------------------------------------------ session tokens
    Mutant(
        name="token-mac-unchecked",
        path="crypto/auth.py",
        original=(
            "    if not hmac.compare_digest(mac, expected):\n"
            '        raise SignatureError("session token does not verify")\n'
        ),
        replacement="",
        breaks="SPEC 2",
        effect="Anyone can forge a relative's session token and read or send as them.",
        tests=(_AUTH,),
    ),
    Mutant(
        name="token-mac-not-constant-time",
        path="crypto/auth.py",
        original="    if not hmac.compare_digest(mac, expected):\n",
        replacement="    if mac != expected:\n",
        breaks="SPEC 2",
        effect="The MAC comparison leaks timing, which lets a token be forged byte by byte.",
        tests=(_AUTH,),
    ),
    Mutant(
        name="token-expiry-unchecked",
        path="gateway/auth.py",
        original=(
            "    if now_ms >= expires_at_ms:\n"
            '        raise Unauthenticated("session expired: sign in again")\n'
        ),
        replacement="",
        breaks="SPEC 2",
        effect="A stolen session token works for ever.",
        tests=(_AUTH,),
    ),
    Mutant(
        name="token-expiry-off-by-one",
        path="gateway/auth.py",
        original="    if now_ms >= expires_at_ms:\n",
        replacement="    if now_ms > expires_at_ms:\n",
        breaks="SPEC 2",
        effect="A token is still accepted at the instant it expires.",
        tests=(_AUTH,),
    ),
    Mutant(
        name="token-version-unchecked",
        path="gateway/auth.py",
        original=(
            "    if version != TOKEN_VERSION:\n"
            '        raise Unauthenticated("unsupported session token version")\n'
        ),
        replacement="",
        breaks="SPEC 2",
        effect="Tokens of an old or unknown format are read as if current (STYLE 4).",
        tests=(_AUTH,),
    ),
    Mutant(
        name="revoked-device-session-accepted",
        path="gateway/guard.py",
        original="        if row is None or row.revoked_at_ms is not None:\n",
        replacement="        if row is None:\n",
        breaks="SPEC 1",
        effect="A lost phone's session keeps working after its device key is revoked.",
        tests=(
            "tests/integration/test_hostile_input.py"
            "::test_a_session_of_a_revoked_device_is_refused_at_once",
            _KNOWN + "::test_a_revoked_device_is_refused_after_it_has_sent[sqlite]",
        ),
    ),
    Mutant(
        name="revoked-terminal-accepted",
        path="gateway/guard.py",
        original=(
            "        if row.revoked_at_ms is not None:\n"
            '            raise Unauthenticated("this terminal certificate has been revoked")\n'
        ),
        replacement="",
        breaks="SPEC 1",
        effect="A revoked terminal (a laptop gone astray, seed 004) keeps its access.",
        tests=(
            "tests/integration/test_gateway_flow.py::test_roles_and_scopes_are_enforced[sqlite]",
        ),
    ),
    # ------------------------------------------------------------------ authorisation
    Mutant(
        name="authz-role-unchecked",
        path="gateway/authz.py",
        original="    if not principal.roles & rule.roles:\n",
        replacement="    if False:\n",
        breaks="P5, P11",
        effect="Any caller, anonymous included, may call any method.",
        tests=(_MATRIX,),
    ),
    Mutant(
        name="authz-unknown-method-allowed",
        path="gateway/authz.py",
        original=(
            "    if rule is None:\n"
            '        raise PermissionDenied("this method is not open to anyone")\n'
        ),
        replacement="    if rule is None:\n        return\n",
        breaks="P5",
        effect="A method added without a rule is open to everyone instead of no one.",
        tests=(_MATRIX,),
    ),
    Mutant(
        name="authz-scope-unchecked",
        path="gateway/authz.py",
        original=(
            "    for institution in institutions:\n        if not principal.covers(institution):\n"
        ),
        replacement="    for institution in institutions:\n        if False:\n",
        breaks="P5, P11",
        effect="Staff act for institutions outside their scope.",
        tests=(_MATRIX,),
    ),
    Mutant(
        name="authz-terminal-institution-unchecked",
        path="gateway/authz.py",
        original="    if principal.has(Role.TERMINAL) or principal.roles & STAFF_ROLES:\n",
        replacement="    if principal.roles & STAFF_ROLES:\n",
        breaks="SPEC 2, P11",
        effect="A terminal opens, escrows and delivers another institution's messages.",
        tests=(_MATRIX,),
    ),
    Mutant(
        name="authz-national-scope-unchecked",
        path="gateway/authz.py",
        original=(
            "        if not principal.national:\n"
            '            raise PermissionDenied("only national staff may do this")\n'
        ),
        replacement="",
        breaks="P5",
        effect="A local administrator creates institutions and verifies lawyers nationally.",
        tests=(_MATRIX,),
    ),
    Mutant(
        name="authz-grant-widened-to-approvers",
        path="gateway/authz.py",
        original='    _REV + "GrantAccess": Rule(SCREENER, T.MESSAGE),\n',
        replacement='    _REV + "GrantAccess": Rule(SCREENER | APPROVER, T.MESSAGE),\n',
        breaks="P5",
        effect="Approvers open messages themselves, so four eyes become two.",
        tests=(_MATRIX,),
    ),
    Mutant(
        name="authz-escrow-unscoped",
        path="gateway/authz.py",
        original='    _TER + "SubmitEscrow": Rule(TERMINAL, T.MESSAGES),\n',
        replacement='    _TER + "SubmitEscrow": Rule(TERMINAL, T.OWN),\n',
        breaks="SPEC 2, P2",
        effect="A terminal escrows (and so releases) another institution's messages.",
        tests=(_MATRIX,),
    ),
    # ------------------------------------------------------------------ state machine
    Mutant(
        name="states-release-without-escrow",
        path="gateway/states.py",
        original="    ACCEPTED: frozenset({ESCROWED, REJECTED}),\n",
        replacement="    ACCEPTED: frozenset({ESCROWED, RELEASED, REJECTED}),\n",
        breaks="P2",
        effect="Ordinary mail is released without escrow.",
        tests=(_STATES,),
    ),
    Mutant(
        name="states-deliver-from-queue",
        path="gateway/states.py",
        original="    QUEUED: frozenset({RELEASED, WITHHELD, REJECTED}),\n",
        replacement="    QUEUED: frozenset({RELEASED, WITHHELD, REJECTED, DELIVERED}),\n",
        breaks="P5",
        effect="A message under screening is delivered without a screener's verdict.",
        tests=(_STATES,),
    ),
    Mutant(
        name="states-privileged-escrowed",
        path="gateway/states.py",
        original=(
            "PRIVILEGED_TRANSITIONS: Final[dict[State, frozenset[State]]] = {\n"
            "    ACCEPTED: frozenset({RELEASED, REJECTED}),\n"
        ),
        replacement=(
            "PRIVILEGED_TRANSITIONS: Final[dict[State, frozenset[State]]] = {\n"
            "    ACCEPTED: frozenset({ESCROWED, RELEASED, REJECTED}),\n"
        ),
        breaks="P4",
        effect="Privileged mail is escrowed, so a screener could open it.",
        tests=(_STATES,),
    ),
    Mutant(
        name="states-complaint-releases-from-queue",
        path="gateway/states.py",
        original="    if current != WITHHELD:\n",
        replacement="    if current not in (WITHHELD, QUEUED):\n",
        breaks="P5",
        effect="A complaint reference releases a queued message without a screener's verdict.",
        tests=(_STATES,),
    ),
    # ------------------------------------------------------------------ policy
    Mutant(
        name="policy-blocked-regime-accepts",
        path="gateway/policy.py",
        original="    if regime_policy == BLOCKED and not privileged:\n",
        replacement="    if regime_policy == BLOCKED and privileged:\n",
        breaks="SPEC 3.4",
        effect="Messages reach detainees whose regime blocks the service (EBI, GVM).",
        tests=(_POLICY,),
    ),
    Mutant(
        name="policy-unapproved-contact-sends",
        path="gateway/policy.py",
        original=(
            "    if contact_status != APPROVED:\n"
            '        raise FailedPrecondition("this contact is not approved by the detainee'
            "'s institution\")\n"
        ),
        replacement="",
        breaks="SPEC 2",
        effect="Anyone who learns a mailbox key writes to the detainee without approval.",
        tests=(_POLICY,),
    ),
    Mutant(
        name="policy-screen-all-not-queued",
        path="gateway/policy.py",
        original="    if regime_policy == SCREEN_ALL:\n        return states.QUEUED\n",
        replacement="",
        breaks="SPEC 3.4, P5",
        effect="A screen-all regime's mail is released without screening.",
        tests=(_POLICY,),
    ),
    Mutant(
        name="policy-order-not-queued",
        path="gateway/policy.py",
        original=(
            "    if any(order.covers(direction, accepted_at_ms) for order in orders):\n"
            "        return states.QUEUED\n"
        ),
        replacement="",
        breaks="SPEC 3.4, P5",
        effect="Mail under an active screening order is released without screening.",
        tests=(_POLICY,),
    ),
    Mutant(
        name="policy-order-any-direction",
        path="gateway/policy.py",
        original=(
            "        return self.direction in (direction, BOTH)"
            " and self.starts_at_ms <= at_ms < end\n"
        ),
        replacement="        return self.starts_at_ms <= at_ms < end\n",
        breaks="P5",
        effect="An order on outgoing mail also opens incoming mail to screeners.",
        tests=(_POLICY,),
    ),
    Mutant(
        name="policy-privileged-reviewable",
        path="gateway/policy.py",
        original=(
            "    if privileged:\n"
            '        raise PermissionDenied("privileged correspondence cannot be reviewed")\n'
        ),
        replacement="",
        breaks="P4",
        effect="A screener is granted a lawyer's message.",
        tests=(_POLICY,),
    ),
    Mutant(
        name="policy-review-outside-queue",
        path="gateway/policy.py",
        original="    if state == states.QUEUED:\n",
        replacement="    if state in (states.QUEUED, states.RELEASED, states.DELIVERED):\n",
        breaks="P5",
        effect="Delivered mail is reopened on the regime alone, with no retrospective approval.",
        tests=(_POLICY,),
    ),
    Mutant(
        name="policy-retrospective-never-expires",
        path="gateway/policy.py",
        original="            and now_ms < self.valid_until_ms\n",
        replacement="",
        breaks="P5",
        effect="A retrospective approval opens messages after its time bound.",
        tests=(_POLICY,),
    ),
    Mutant(
        name="policy-retrospective-unapproved",
        path="gateway/policy.py",
        original="            self.status == common_pb2.RETROSPECTIVE_STATUS_APPROVED\n",
        replacement="            self.status != common_pb2.RETROSPECTIVE_STATUS_REJECTED\n",
        breaks="P5",
        effect="A pending retrospective request opens messages before a second officer approves.",
        tests=(_POLICY,),
    ),
    Mutant(
        name="contact-request-never-expires",
        path="gateway/policy.py",
        original=(
            "    if stored == REQUESTED and now_ms - requested_at_ms >= CONTACT_REQUEST_TTL_MS:\n"
        ),
        replacement="    if False:\n",
        breaks="P11",
        effect="Requests stay REQUESTED for ever, unlike ones nobody decides: unequal answers.",
        tests=(_CONTACT_POLICY,),
    ),
    Mutant(
        name="contact-deliverable-before-approval",
        path="gateway/policy.py",
        original=(
            "    return status == APPROVED and detainee_status not in (None, RELEASED_DETAINEE)\n"
        ),
        replacement="    return detainee_status not in (None, RELEASED_DETAINEE)\n",
        breaks="P11",
        effect="Whoever requests contact learns whether the id is a detainee held now.",
        tests=(_CONTACT_POLICY,),
    ),
    # ------------------------------------------------------------------ escrow hand-in
    Mutant(
        name="escrow-blob-other-message",
        path="gateway/services/terminal.py",
        original=(
            "    if escrowed.message_id != message_id:\n"
            '        raise InvalidArgument("escrow blob is for another message")\n'
        ),
        replacement="",
        breaks="P3",
        effect="A message is escrowed with another message's key: review opens the wrong one.",
        tests=(
            "tests/integration/test_terminal_intake.py"
            "::test_an_escrow_blob_made_for_another_message_is_refused",
        ),
    ),
    Mutant(
        name="escrow-privileged-accepted",
        path="gateway/services/terminal.py",
        original=(
            "    if blob is not None and not outcome.escrowed:\n"
            "        raise InvalidArgument(unexpected)\n"
        ),
        replacement="",
        breaks="P4",
        effect="A terminal's escrow of privileged mail is accepted without a word.",
        tests=(
            "tests/integration/test_gateway_flow.py"
            "::test_privileged_correspondence_skips_escrow_and_is_decided_by_the_gateway[sqlite]",
        ),
    ),
    Mutant(
        name="escrow-missing-blob-accepted",
        path="gateway/services/terminal.py",
        original=(
            "    if blob is None and outcome.escrowed:\n        raise InvalidArgument(missing)\n"
        ),
        replacement=(
            "    if blob is None and outcome.escrowed:\n"
            "        outcome = policy.IntakeOutcome(escrowed=False, state=states.RELEASED)\n"
        ),
        breaks="P2",
        effect="Mail handed in without escrow is released (the state machine alone stops it).",
        tests=(
            "tests/integration/test_terminal_intake.py"
            "::test_a_non_privileged_message_without_its_escrow_blob_is_refused_and_waits[sqlite]",
        ),
    ),
    # ------------------------------------------------------------------ envelopes
    Mutant(
        name="envelope-signature-unchecked",
        path="crypto/envelope.py",
        original=("    _sodium.ed25519_verify(sender.signing_key, signed, envelope.signature)\n"),
        replacement="",
        breaks="P8",
        effect="Tampered envelopes are accepted and delivered.",
        tests=(_VECTORS,),
    ),
    Mutant(
        name="envelope-sender-key-unchecked",
        path="crypto/envelope.py",
        original=(
            "    if not hmac.compare_digest(header.sender_key_id, sender.id):\n"
            '        raise EnvelopeError("envelope is not from the expected sender key")\n'
        ),
        replacement="",
        breaks="P8",
        effect="An envelope naming one sender verifies under another sender's key record.",
        tests=(_VECTORS,),
    ),
    Mutant(
        name="envelope-sealed-keys-unsigned",
        path="crypto/envelope.py",
        original="        yield sealed.key_id\n        yield sealed.sealed_dek\n",
        replacement="        yield sealed.key_id\n",
        breaks="P8",
        effect="The signature no longer covers the sealed data keys: they can be swapped.",
        tests=(_VECTORS,),
    ),
    Mutant(
        name="envelope-key-commitment-unchecked",
        path="crypto/envelope.py",
        original="    if not hmac.compare_digest(expected, header.key_commitment):\n",
        replacement="    if False:\n",
        breaks="P3",
        effect="A data key other than the sender's (a wrong escrow) passes as the right one.",
        tests=(_ENVELOPE,),
    ),
    Mutant(
        name="review-key-commitment-skipped",
        path="crypto/envelope.py",
        original=(
            "    verified = verify_envelope(envelope, sender, now_ms=now_ms, limits=limits)\n"
            "    verify_dek_commitment(verified.header, dek)\n"
        ),
        replacement=(
            "    verified = verify_envelope(envelope, sender, now_ms=now_ms, limits=limits)\n"
        ),
        breaks="P3",
        effect="Review decrypts with an escrowed key without checking the sender committed to it.",
        tests=(_ENVELOPE,),
    ),
    # ------------------------------------------------------------------ tree heads, proofs
    Mutant(
        name="tree-head-signature-unchecked",
        path="crypto/logentry.py",
        original=(
            "    ed25519_verify(log_public_key, tree_head_signing_digest(body), sth.signature)\n"
        ),
        replacement="",
        breaks="P7",
        effect="Anyone can sign a tree head: receipts and releases prove nothing.",
        tests=(_LOGENTRY,),
    ),
    Mutant(
        name="tree-head-key-id-unchecked",
        path="crypto/logentry.py",
        original=(
            "    if not hmac.compare_digest(head.log_key_id, log_key_id):\n"
            '        raise SignatureError("tree head is signed by another log key than the one'
            ' expected")\n'
        ),
        replacement="",
        breaks="P7",
        effect="A head naming another log key is taken as the pinned log's.",
        tests=(_LOGENTRY,),
    ),
    Mutant(
        name="inclusion-root-unchecked",
        path="crypto/merkle.py",
        original="    if not hmac.compare_digest(computed, root):  # step 5\n",
        replacement="    if False:  # step 5\n",
        breaks="P7",
        effect="Any inclusion proof of the right length proves any leaf.",
        tests=(_MERKLE,),
    ),
    Mutant(
        name="leaf-hash-without-domain-separation",
        path="crypto/merkle.py",
        original="    return sha256(LEAF_PREFIX + data)\n",
        replacement="    return sha256(data)\n",
        breaks="P7",
        effect="An interior node passes as a leaf (RFC 9162 2.1.1): entries can be invented.",
        tests=(_MERKLE,),
    ),
    Mutant(
        name="consistency-first-root-unchecked",
        path="crypto/merkle.py",
        original="    if not hmac.compare_digest(fr, first_root):\n",
        replacement="    if False:\n",
        breaks="P7, P13",
        effect="A rewritten history passes as an extension of the old one.",
        tests=(_MERKLE,),
    ),
    Mutant(
        name="consistency-second-root-unchecked",
        path="crypto/merkle.py",
        original="    if not hmac.compare_digest(sr, second_root):\n",
        replacement="    if False:\n",
        breaks="P7, P13",
        effect="A new head's root is never tied to the proof: any root passes.",
        tests=(_MERKLE,),
    ),
    Mutant(
        name="consistency-equal-size-roots-unchecked",
        path="crypto/merkle.py",
        original="        if not hmac.compare_digest(first_root, second_root):\n",
        replacement="        if False:\n",
        breaks="P7, P13",
        effect="Two different trees of the same size (a fork) pass as consistent.",
        tests=(_MERKLE,),
    ),
    Mutant(
        name="entry-inclusion-index-unchecked",
        path="crypto/logentry.py",
        original=(
            "    if proof.leaf_index != index:\n"
            '        raise ProofError(f"inclusion proof is for leaf {proof.leaf_index},'
            ' the entry is {index}")\n'
        ),
        replacement="",
        breaks="P7",
        effect="An entry is proven by another position's proof.",
        tests=(_LOGENTRY,),
    ),
    # ------------------------------------------------------------------ receipts (SDK)
    Mutant(
        name="receipt-envelope-digest-unchecked",
        path="crypto/logentry.py",
        original=(
            "    if not hmac.compare_digest(event.extra[ENVELOPE_DIGEST_FIELD],"
            " envelope_digest.hex()):\n"
        ),
        replacement="    if False:\n",
        breaks="P7, P8",
        effect="A receipt proves the acceptance of another envelope under the same id.",
        tests=(_RECEIPTS, _LOGENTRY),
    ),
    Mutant(
        name="receipt-entry-message-unchecked",
        path="crypto/logentry.py",
        original=(
            "    if event.message_id() != message_id.hex():\n"
            '        raise ProofError("receipt\'s log entry is about another message")\n'
        ),
        replacement="",
        breaks="P7",
        effect="A receipt's proof of another message's entry is taken for this one's.",
        tests=(_RECEIPTS, _LOGENTRY),
    ),
    Mutant(
        name="receipt-entry-action-unchecked",
        path="crypto/logentry.py",
        original="    if event.action is not LogAction.MESSAGE_ACCEPTED:\n",
        replacement="    if False:\n",
        breaks="P7",
        effect="Any logged event about the message passes as its acceptance.",
        tests=(_RECEIPTS, _LOGENTRY),
    ),
    Mutant(
        name="receipt-sent-entry-unchecked",
        path="clients/relative/receipts.py",
        original=(
            "    if sent_entry is not None and (\n        sent_entry.index != receipt.entry.index\n"
        ),
        replacement="    if False and (\n        sent_entry.index != receipt.entry.index\n",
        breaks="P7",
        effect="The proof may be about another entry than the one the gateway answered with.",
        tests=(_RECEIPTS,),
    ),
    Mutant(
        name="receipt-log-key-validity-unchecked",
        path="clients/relative/receipts.py",
        original="    if not log_key.valid_at(head.timestamp_ms):\n",
        replacement="    if False:\n",
        breaks="P7",
        effect="A head signed with a retired or not-yet-valid log key is trusted.",
        tests=(_RECEIPTS,),
    ),
    # ------------------------------------------------------------------ proven releases
    Mutant(
        name="release-action-unchecked",
        path="crypto/logentry.py",
        original="    if event.action is not LogAction.MESSAGE_RELEASED:\n",
        replacement="    if False:\n",
        breaks="P12",
        effect="A terminal delivers on the proof of any entry (acceptance, escrow), not a release.",
        tests=(_LOGENTRY,),
    ),
    Mutant(
        name="release-message-unchecked",
        path="crypto/logentry.py",
        original=(
            "    if event.message_id() != message_id.hex():\n"
            '        raise ProofError("the release entry is about another message")\n'
        ),
        replacement="",
        breaks="P12",
        effect="One message's logged release lets the terminal deliver another.",
        tests=(_LOGENTRY,),
    ),
    Mutant(
        name="release-envelope-message-unchecked",
        path="clients/terminal/client.py",
        original="        if not hmac.compare_digest(header.message_id, delivery.message_id):\n",
        replacement="        if False:\n",
        breaks="P12",
        effect="A proven release of one message carries another message's envelope.",
        tests=(_RELEASES,),
    ),
    Mutant(
        name="release-proof-skipped",
        path="clients/terminal/client.py",
        original=(
            "        logentry.verify_release(\n"
            "            delivery.release_entry, delivery.release_proof, head,"
            " delivery.message_id\n"
            "        )\n"
        ),
        replacement="",
        breaks="P12",
        effect="The terminal delivers whatever the database says is released.",
        tests=(_RELEASES,),
    ),
    # ------------------------------------------------------------------ the intake cursor
    Mutant(
        name="intake-cursor-passes-waiting",
        path="clients/terminal/cursor.py",
        original="        if waiting:\n            self._held = True\n",
        replacement="",
        breaks="SPEC 3.3",
        effect="The cursor moves past mail still waiting for escrow, which is then never taken in.",
        tests=(_CURSOR,),
    ),
    # ------------------------------------------------------------------ the auditor's replay
    Mutant(
        name="replay-transition-ignored",
        path="clients/audit/replay.py",
        original='            self._rule(index, str(exc), table="messages", row=key)\n',
        replacement="            pass\n",
        breaks="P12",
        effect="The log may record moves the state machine forbids (release before escrow).",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-routing-ignored",
        path="clients/audit/replay.py",
        original="            elif outcome.state != target:\n",
        replacement="            elif False:\n",
        breaks="P12",
        effect="Mail released past a screening order raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-privileged-escrow-ignored",
        path="clients/audit/replay.py",
        original="                if not outcome.escrowed:\n",
        replacement="                if False:\n",
        breaks="P4, P12",
        effect="Escrow of a lawyer's mail raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-release-without-escrow-ignored",
        path="clients/audit/replay.py",
        original='            if event.extra.get("basis") != "privileged":\n',
        replacement="            if False:\n",
        breaks="P2, P12",
        effect="A release without escrow claimed on no privileged basis raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-verdict-mismatch-ignored",
        path="clients/audit/replay.py",
        original=(
            "        if verdict is None or verdict[0] != event.actor or verdict[1] != wanted:\n"
        ),
        replacement="        if verdict is None:\n",
        breaks="P5, P12",
        effect="A release against the verdict, or by another screener, raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-ungranted-decision-ignored",
        path="clients/audit/replay.py",
        original="        if event.actor not in message.granted:\n",
        replacement="        if False:\n",
        breaks="P6, P12",
        effect="A verdict by a screener who never held a grant raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-grant-basis-ignored",
        path="clients/audit/replay.py",
        original=(
            '            self._rule(index, f"granted although {exc}", table="grants",'
            " row=grant_id)\n"
        ),
        replacement="            pass\n",
        breaks="P5, P12",
        effect="A grant on no legal basis, or for privileged mail, raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-four-eyes-ignored",
        path="clients/audit/replay.py",
        original="        if retro.requested_by == event.actor:\n",
        replacement="        if False:\n",
        breaks="P5, P12",
        effect="An officer approving their own retrospective request raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-acceptance-rules-ignored",
        path="clients/audit/replay.py",
        original=(
            '            self._rule(index, f"accepted although {exc}", table="messages", row=row)\n'
        ),
        replacement="            pass\n",
        breaks="P12",
        effect="Mail accepted from an unapproved contact or into a blocked regime is no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-privilege-flag-ignored",
        path="clients/audit/replay.py",
        original="        if message.privileged != (message.account in self._correspondents):\n",
        replacement="        if False:\n",
        breaks="P4, P12",
        effect="A message marked privileged from a sender nobody verified raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-staff-role-ignored",
        path="clients/audit/replay.py",
        original="        if not member.roles & needed:\n",
        replacement="        if False:\n",
        breaks="P5, P12",
        effect="A staff action by a member without the role raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-revoked-terminal-ignored",
        path="clients/audit/replay.py",
        original=(
            '        if not actor.startswith("terminal:") or terminal is None or terminal[1]:\n'
        ),
        replacement='        if not actor.startswith("terminal:") or terminal is None:\n',
        breaks="SPEC 1, P12",
        effect="A revoked terminal's actions raise no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="compare-edited-column-ignored",
        path="clients/audit/replay.py",
        original="            if not _same(stored, logged):\n",
        replacement="            if False:\n",
        breaks="P12",
        effect="A hand-edited column (a state, a privilege flag) raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="compare-forged-row-ignored",
        path="clients/audit/replay.py",
        original="            if not _unlogged_allowed(table, values):\n",
        replacement="            if False:\n",
        breaks="P12",
        effect="A row inserted by hand (a grant, an approval) raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="compare-deleted-row-ignored",
        path="clients/audit/replay.py",
        original="        if key not in seen:\n",
        replacement="        if False:\n",
        breaks="P12",
        effect="A row deleted by hand (an order, a revocation) raises no finding.",
        tests=(_REPLAY,),
    ),
    # ------------------------------------------------------------------ reconcile
    Mutant(
        name="reconcile-grant-to-anyone",
        path="clients/audit/reconcile.py",
        original="    own = [g for g in grants if g.entity == decrypt.entity_id]\n",
        replacement="    own = list(grants)\n",
        breaks="P6",
        effect="A decrypt by one officer matches a grant made to another.",
        tests=(_RECONCILE,),
    ),
    Mutant(
        name="reconcile-grant-after-decrypt",
        path="clients/audit/reconcile.py",
        original="        (g for g in own if g.time_ms <= limit),\n",
        replacement="        (g for g in own),\n",
        breaks="P6",
        effect="A decrypt made before any grant matches a grant logged afterwards.",
        tests=(_RECONCILE,),
    ),
    Mutant(
        name="reconcile-grant-never-expires",
        path="clients/audit/reconcile.py",
        original=(
            "        if decrypt.time_ms - self.leeway_ms > grant.time_ms + self.validity_ms:\n"
        ),
        replacement="        if False:\n",
        breaks="P14",
        effect="One grant covers decrypts for ever, not for its bounded window.",
        tests=(_RECONCILE,),
    ),
    Mutant(
        name="reconcile-grant-window-off-by-leeway",
        path="clients/audit/reconcile.py",
        original=(
            "        if decrypt.time_ms - self.leeway_ms > grant.time_ms + self.validity_ms:\n"
        ),
        replacement=(
            "        if decrypt.time_ms - 2 * self.leeway_ms > grant.time_ms + self.validity_ms:\n"
        ),
        breaks="P14",
        effect="The grant window stretches by an extra leeway past its bound.",
        tests=(_RECONCILE,),
    ),
    Mutant(
        name="reconcile-basis-left-queue-ignored",
        path="clients/audit/reconcile.py",
        original="        if left is not None and at - leeway > left[0]:\n",
        replacement="        if False:\n",
        breaks="P14",
        effect="A decrypt after the message left the queue (basis gone) still matches.",
        tests=(_RECONCILE,),
    ),
    Mutant(
        name="reconcile-approval-expiry-ignored",
        path="clients/audit/reconcile.py",
        original="        if decrypt.time_ms - self.leeway_ms > until:\n",
        replacement="        if False:\n",
        breaks="P5, P14",
        effect="A decrypt after the retrospective approval expired still matches.",
        tests=(_RECONCILE,),
    ),
    Mutant(
        name="reconcile-unsigned-grant-accepted",
        path="clients/audit/reconcile.py",
        original=(
            "        if self.require_signed and (grant.signed_at_ms is None"
            " or grant.signed_at_ms > limit):\n"
        ),
        replacement="        if False:\n",
        breaks="P6",
        effect="A grant not yet in a signed head covers a decrypt (the log could drop it).",
        tests=(_RECONCILE,),
    ),
    # ------------------------------------------------------------------ witnesses
    Mutant(
        name="witness-same-size-fork-accepted",
        path="crypto/cosignature.py",
        original="        if not hmac.compare_digest(head.root_hash, newest.root_hash):\n",
        replacement="        if False:\n",
        breaks="P13",
        effect="Two heads of one size with different roots (a split view) are both cosigned.",
        tests=(_COSIGNATURE,),
    ),
    Mutant(
        name="witness-consistency-unchecked",
        path="crypto/cosignature.py",
        original="        verify_head_consistency(small, large, proof)\n",
        replacement="        pass\n",
        breaks="P13",
        effect="A witness cosigns a larger head that rewrote history.",
        tests=(_COSIGNATURE,),
    ),
    Mutant(
        name="witness-backdated-head-accepted",
        path="crypto/cosignature.py",
        original="    if head.timestamp_ms + clock_leeway_ms < newest.timestamp_ms:\n",
        replacement="    if False:\n",
        breaks="P13",
        effect="A larger head signed before a smaller one (a second history) is cosigned.",
        tests=(_COSIGNATURE,),
    ),
    Mutant(
        name="cosignature-signature-unchecked",
        path="crypto/cosignature.py",
        original="    ed25519_verify(public_key, digest, cosignature.signature)\n",
        replacement="",
        breaks="P13",
        effect="Anyone can hand in a cosignature in a witness's name.",
        tests=(_COSIGNATURE,),
    ),
    Mutant(
        name="witness-rollback-accepted",
        path="clients/witness.py",
        original="                if relation is Successor.OLDER and newest:\n",
        replacement="                if False:\n",
        breaks="P13",
        effect="A gateway that truncated its log shows an older newest head unnoticed.",
        tests=(_WITNESS,),
    ),
    Mutant(
        name="witness-unprovable-head-accepted",
        path="clients/witness.py",
        original="                if large == newest.tree_size:\n",
        replacement="                if False:\n",
        breaks="P13",
        effect="A gateway that cannot prove a head it showed before is not called rolled back.",
        tests=(_WITNESS,),
    ),
    Mutant(
        name="witness-log-key-validity-unchecked",
        path="clients/witness.py",
        original="        if not log_key.valid_at(verified.timestamp_ms):\n",
        replacement="        if False:\n",
        breaks="P13",
        effect="A head signed with a retired log key is witnessed as genuine.",
        tests=(_WITNESS,),
    ),
    # ------------------------------------------------------------------ names people read
    Mutant(
        name="names-direction-characters-accepted",
        path="gateway/services/common.py",
        original=(
            '    if any(unicodedata.category(ch) == "Cf" and ch not in NAME_FORMAT_ALLOWED'
            " for ch in value):\n"
        ),
        replacement="    if False:\n",
        breaks="SPEC 7",
        effect="A display name with a right-to-left override reorders what staff read.",
        tests=(_NAMES,),
    ),
    Mutant(
        name="names-override-allowed",
        path="gateway/services/common.py",
        original='NAME_FORMAT_ALLOWED: Final = frozenset({"\\u200c", "\\u200d"})\n',
        replacement='NAME_FORMAT_ALLOWED: Final = frozenset({"\\u200c", "\\u200d", "\\u202e"})\n',
        breaks="SPEC 7",
        effect="The right-to-left override slips through as an allowed joiner.",
        tests=(_NAMES,),
    ),
    # ------------------------------------------------------------------ the browser port
    Mutant(
        name="web-any-origin",
        path="gateway/web.py",
        original=(
            "        if origin is not None and origin not in self.origins"
            " and not _same_origin(origin, headers):\n"
        ),
        replacement="        if False:\n",
        breaks="SPEC 2",
        effect="Any web page can call the API with a visitor's session from their browser.",
        tests=(_WEB_GATE,),
    ),
    Mutant(
        name="web-cors-echoes-any-origin",
        path="gateway/web.py",
        original="        if origin is None or origin not in self.origins:\n",
        replacement="        if origin is None:\n",
        breaks="SPEC 2",
        effect="The CORS answer names whichever origin asked, letting any page read answers.",
        tests=(_WEB_GATE,),
    ),
    Mutant(
        name="web-body-length-unchecked",
        path="gateway/web.py",
        original="        if int(length) > self.max_body:\n",
        replacement="        if False:\n",
        breaks="P15",
        effect="A body of any declared size is read before anything refuses it.",
        tests=(_WEB_GATE,),
    ),
    Mutant(
        name="web-any-content-type",
        path="gateway/web.py",
        original="        if content_type not in CONTENT_TYPES:\n",
        replacement="        if False:\n",
        breaks="P15",
        effect="JSON and gRPC-Web bodies reach parsers the port means never to run.",
        tests=(_WEB_GATE,),
    ),
    Mutant(
        name="web-staff-methods-exposed",
        path="gateway/authz.py",
        original="    [m for m in RULES if m.startswith(_REL)]\n",
        replacement="    [m for m in RULES if m.startswith((_REL, _ADM))]\n",
        breaks="SPEC 2",
        effect="Administrators' calls are reachable from web pages.",
        tests=(_WEB_GATE,),
    ),
    Mutant(
        name="web-guard-skipped",
        path="gateway/web.py",
        original="    log.admitted(await guard.admit(log.method, request, _credentials(ctx)))\n",
        replacement="",
        breaks="SPEC 2",
        effect="A browser call runs without sign-in or rights: anyone lists a relative's contacts.",
        tests=(_WEB_RIGHTS,),
    ),
    Mutant(
        name="web-any-host-same-origin",
        path="gateway/web.py",
        original='    return host is not None and origin == f"https://{host}"\n',
        replacement="    return True\n",
        breaks="SPEC 2",
        effect="Any page counts as the app's own and calls the API with a visitor's session.",
        tests=(_WEB_APP,),
    ),
    Mutant(
        name="web-app-without-policy",
        path="gateway/web.py",
        original='        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),\n',
        replacement="",
        breaks="SPEC 2",
        effect="The app's pages run injected inline script and code from other origins.",
        tests=(_WEB_APP,),
    ),
    Mutant(
        name="web-release-file-unchecked",
        path="crypto/webrelease.py",
        original=("    if len(data) != listed.size or file_digest(path, data) != listed.digest:\n"),
        replacement="    if False:\n",
        breaks="P12",
        effect="A changed bundle passes as the release the log records.",
        tests=(_WEB_RELEASE,),
    ),
    Mutant(
        name="web-audit-inclusion-unchecked",
        path="clients/audit/webapp.py",
        original="        logentry.verify_entry_inclusion(",
        replacement="        (lambda *_: None)(",
        breaks="P12",
        effect="A release the gateway only claims to have logged passes the auditor's check.",
        tests=(_WEB_APP_AUDIT,),
    ),
    Mutant(
        name="web-audit-integrity-unchecked",
        path="clients/audit/webapp.py",
        original=(
            "        if integrity is None or not hmac.compare_digest("
            "integrity, _sri(files[path])):\n"
        ),
        replacement="        if False:\n",
        breaks="P12",
        effect="A page loading its scripts without Subresource Integrity passes the check.",
        tests=(_WEB_APP_AUDIT,),
    ),
    Mutant(
        name="device-link-never-expires",
        path="gateway/store/keys.py",
        original="    return str(account_id) if expires > now_ms else None\n",
        replacement="    return str(account_id)\n",
        breaks="SPEC 2",
        effect="A link code found later (an old screenshot) still adds a device to the account.",
        tests=(_DEVICES + "::test_codes_expire_and_an_account_holds_a_few[sqlite]",),
    ),
    Mutant(
        name="send-to-a-replaced-mailbox-key",
        path="gateway/services/relative.py",
        original="            if current is None or current.id != recipient_id:\n",
        replacement="            if current is None:\n",
        breaks="SPEC 3.8",
        effect=(
            "A message sealed to a mailbox key the institution replaced (after a loss) is "
            "accepted, for a key the terminal may no longer hold."
        ),
        tests=(_KNOWN + "::test_a_replaced_mailbox_key_is_refused_after_it_was_sent_to[sqlite]",),
    ),
    Mutant(
        name="known-key-any-purpose",
        path="gateway/services/common.py",
        original=(
            "    if cached is not None and cached.purpose == purpose and cached.valid_at(now_ms):\n"
        ),
        replacement="    if cached is not None and cached.valid_at(now_ms):\n",
        breaks="SPEC 2",
        effect="A key verified once for one purpose is taken from memory for another.",
        tests=("tests/unit/test_known_facts.py",),
    ),
    Mutant(
        name="revoke-device-of-anyone",
        path="gateway/services/relative.py",
        original="                or row.subject != caller.account_id\n",
        replacement="",
        breaks="SPEC 2",
        effect="Any relative can revoke another relative's device and cut them off.",
        tests=(_DEVICES + "::test_a_relative_revokes_no_one_elses_device[sqlite]",),
    ),
    Mutant(
        name="replay-relative-revocation-ignored",
        path="clients/audit/replay.py",
        original=(
            '            self._rule(index, "a relative revoked a key that is not a device of '
            'their own")\n'
        ),
        replacement="            pass\n",
        breaks="P12",
        effect="A revocation of someone else's key in a relative's name raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="policy-complaint-release-closed-mailbox",
        path="gateway/policy.py",
        original=(
            "    if detainee_status == RELEASED_DETAINEE:\n"
            "        raise FailedPrecondition(\n"
            '            "the detainee\'s mailbox is closed: the message cannot be delivered"\n'
        ),
        replacement=(
            "    if False:\n"
            "        raise FailedPrecondition(\n"
            '            "the detainee\'s mailbox is closed: the message cannot be delivered"\n'
        ),
        breaks="SPEC 3.8",
        effect="A withheld message is released after a complaint into a closed mailbox.",
        tests=(_POLICY,),
    ),
    Mutant(
        name="policy-reason-told-regardless",
        path="gateway/policy.py",
        original="    if state == states.WITHHELD and told and reason:\n",
        replacement="    if state == states.WITHHELD and reason:\n",
        breaks="SPEC 3.6",
        effect="Relatives learn why a message was withheld where the regime tells them nothing.",
        tests=(_POLICY,),
    ),
    Mutant(
        name="replay-reason-told-ignored",
        path="clients/audit/replay.py",
        original="                detainee is not None and detainee.regime in self._telling\n",
        replacement="                False\n",
        breaks="P12",
        effect="A withholding marked as telling the relative why, against the regime, goes unseen.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="replay-complaint-reference-unchecked",
        path="clients/audit/replay.py",
        original='        if not event.extra.get(COMPLAINT_REFERENCE_FIELD, "").strip():\n',
        replacement="        if False:\n",
        breaks="P12",
        effect="A withheld message released with no complaint decision raises no finding.",
        tests=(_REPLAY,),
    ),
    Mutant(
        name="news-quiet-period-ignored",
        path="gateway/store/notices.py",
        original="                notification_addresses.c.last_sent_at_ms <= quiet_since_ms,\n",
        replacement="                True,\n",
        breaks="SPEC 7",
        effect="A notice follows every event, so their timing shows when mail moves.",
        tests=(_NEWS + "::test_news_is_told_once_within_the_quiet_period",),
    ),
    Mutant(
        name="news-address-kept-after-removal",
        path="gateway/services/relative.py",
        original=(
            "            await self.ctx.write(lambda c: store.remove_notification_address("
            "c, caller.account_id))\n"
        ),
        replacement="",
        breaks="SPEC 7",
        effect="An address the relative removed is still kept and written to.",
        tests=(
            _NEWS + "::test_news_is_told_without_content_and_stops_when_the_address_is_removed",
        ),
    ),
    # ------------------------------------------------------------------ triage (SPEC P16)
    Mutant(
        name="states-triage-privileged",
        path="gateway/states.py",
        original='        raise FailedPrecondition("privileged mail is never triaged")\n',
        replacement="        pass\n",
        breaks="P16",
        effect="The gateway takes a triage summary for a privileged message.",
        tests=(_STATES,),
    ),
    Mutant(
        name="states-triage-any-state",
        path="gateway/states.py",
        original=(
            "    if current != QUEUED:\n"
            "        raise FailedPrecondition(\n"
            '            f"only a message waiting'
        ),
        replacement=(
            '    if False:\n        raise FailedPrecondition(\n            f"only a message waiting'
        ),
        breaks="P16",
        effect="A message without a legal basis for review (released at once) gets triaged.",
        tests=(_STATES,),
    ),
    Mutant(
        name="terminal-triages-privileged",
        path="clients/terminal/triage.py",
        original="            if item.privileged:\n                continue",
        replacement="            if False:\n                continue",
        breaks="P4, P16",
        effect="The terminal decrypts and triages privileged mail when the gateway queues it.",
        tests=(_TRIAGE,),
    ),
    Mutant(
        name="summary-not-padded",
        path="clients/triage/sealed.py",
        original='        return raw.ljust(SUMMARY_BYTES, b" ")\n',
        replacement="        return raw\n",
        breaks="P16",
        effect="A summary's size tells the gateway which messages have findings.",
        tests=(_TRIAGE,),
    ),
    Mutant(
        name="policy-watch-list-any-detainee",
        path="gateway/policy.py",
        original="    if detainee_status != HELD or detainee_institution != institution:\n",
        replacement="    if detainee_status != HELD:\n",
        breaks="P11",
        effect="An institution keeps a watch list on a detainee held elsewhere.",
        tests=(_POLICY,),
    ),
    # ------------------------------------------------------------------ retention of rows
    Mutant(
        name="retention-deletes-unsettled",
        path="gateway/store/messages.py",
        original="                messages.c.state.in_(sorted(states.SETTLED)),\n",
        replacement="",
        breaks="SPEC 3.8",
        effect="Retention deletes messages still on their way: they are never delivered.",
        tests=(_RETENTION,),
    ),
    Mutant(
        name="replay-retention-drops-unsettled",
        path="clients/audit/replay.py",
        original="            if m.accepted_at_ms < before and m.state in states.SETTLED\n",
        replacement="            if m.accepted_at_ms < before\n",
        breaks="P12",
        effect="A message deleted before it was settled goes unseen by the auditor.",
        tests=(_RETENTION,),
    ),
    # ------------------------------------------------------------------ directory hand-overs
    Mutant(
        name="succession-next-key-unchecked",
        path="crypto/keyrecords.py",
        original=(
            "    _sodium.ed25519_verify(following.signing_key, next_digest, "
            "succession.next_signature)\n"
        ),
        replacement="",
        breaks="P8",
        effect="Any key can join the directory's chain by signing a hand-over from itself.",
        tests=(_SUCCESSION,),
    ),
    Mutant(
        name="succession-previous-key-unchecked",
        path="crypto/keyrecords.py",
        original=(
            "    _sodium.ed25519_verify(previous.signing_key, previous_digest, "
            "succession.previous_signature)\n"
        ),
        replacement="",
        breaks="P8",
        effect="A client pinned to the directory key follows a hand-over it never signed.",
        tests=(_SUCCESSION,),
    ),
    Mutant(
        name="transit-signature-unchecked",
        path="escrow/signing.py",
        original="            verify_signature(self._public, message, signature)\n",
        replacement="            pass\n",
        breaks="P8",
        effect="A key server answering with another key's signature puts it in clients' hands.",
        tests=(_TRANSIT,),
    ),
    Mutant(
        name="batch-refusal-kept",
        path="gateway/storage/groupcommit.py",
        original="        raise _Redo from exc\n",
        replacement="        return None, exc\n",
        breaks="P10",
        effect=(
            "A job refused inside a group commit keeps what it wrote before the refusal: a "
            "log leaf for a send that was refused, committed with the rest of the batch."
        ),
        tests=(
            "tests/integration/test_group_commit.py"
            "::test_a_replayed_message_in_a_batch_is_refused_and_undone_alone[sqlite]",
        ),
    ),
    Mutant(
        name="c1-control-characters-accepted",
        path="crypto/text.py",
        original='_CONTROL: Final = re.compile("[\\x00-\\x1f\\x7f-\\x9f]")\n',
        replacement='_CONTROL: Final = re.compile("[\\x00-\\x1f\\x7f]")\n',
        breaks="P10",
        effect="A NEXT LINE or another C1 control character gets into log leaves and names.",
        tests=("tests/unit/test_text.py", _LOGENTRY),
    ),
)
