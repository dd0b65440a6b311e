"""The gateway's queries: one function per question or change, each within a caller's transaction.

Services open a transaction (``Database.write`` or ``Database.read``), call these
functions and log what changed in the same transaction (``log``, gateway/translog.py),
so a change and its log entry commit together or not at all. Nothing here decides
policy (gateway/policy.py) or formats API messages (gateway/services).

The functions live in one module per subject:

    events       the log helper (``log``, ``GATEWAY_ACTOR``) and the acceptance event
    scopes       which institution a call's target belongs to (authz.ScopeResolver)
    keys         key records, and the challenges relatives sign in with
    people       accounts, privileged correspondents, contacts
    placements   institutions, regimes, detainees (intake, transfer, release),
                 mailbox keys, handovers
    messages     messages, their states, and the feeds that stream them
    review       screening orders, the screening queue, grants, retrospective
                 requests, escrow-audit samples
    terminals    institution terminals and their certificates
    staff        staff members' roles and institutions as last recorded
    triage       sealed triage summaries on queued messages, sealed watch lists
    notices      e-mail addresses for notices of news, and what is news
    releases     where the log last recorded a release of the web app
    _common      what they share: new ids, typed rows, constraints as errors

Callers use this package, not its modules: ``store.message(...)``. ``__all__`` below
is the whole of what the store offers, in one place, so a service depends on the
store as one interface (which an in-memory store for tests could implement), call
sites keep reading ``store.x``, and the statements, row builders and helpers of each
module stay private to it. Tests that compare a module's statements with
SQLAlchemy's import the module.

Rows are typed: every function returns plain values or rows of a NamedTuple class
defined beside it (``MessageRow``, ``KeyRecordRow``, ...; a joined view nests them,
as ``FeedRow.message``), built from the database row inside the store, so a misspelt
column is a type error. Each class's fields are the columns its selects take, in
order, and tests/unit/test_store_rows.py holds their types to the schema's.

The database's errors stop here: a function that inserts raises AlreadyExists for a
constraint it breaks (a replayed message id, a key registered twice), so services
never import ``sqlalchemy.exc``. A lost connection is the storage layer's
Unavailable (gateway/storage/).

The queries every message passes through are built once, at import, with bound
parameters (the ``_Q_*`` constants), and run on the database driver directly
(gateway/storage/direct.py): building a SQLAlchemy statement costs several times more
than running it on SQLite, and executing one through SQLAlchemy several times more
again; these run a few times per message.
"""

from __future__ import annotations

from sealpost.gateway.store._common import new_id
from sealpost.gateway.store.events import GATEWAY_ACTOR, log, log_acceptance
from sealpost.gateway.store.keys import (
    KeyRecordRow,
    add_challenge,
    add_device_link,
    add_key_record,
    add_succession,
    current_key,
    key_record,
    key_records_by_id,
    keys_of,
    latest_record,
    records_of,
    revocations,
    revoke_key,
    successions,
    take_challenge,
    take_device_link,
)
from sealpost.gateway.store.messages import (
    DeliveryRow,
    FeedRow,
    MessageRow,
    NewMessage,
    WithheldRow,
    account_audience,
    add_feed,
    count_by_state,
    delete_settled_before,
    deliveries,
    feed_after,
    insert_message,
    institution_audience,
    message,
    message_exists,
    message_of_account,
    set_state,
    withheld,
)
from sealpost.gateway.store.notices import (
    NewsRow,
    NotificationRow,
    accounts_with_news,
    claim_news,
    notification_address,
    release_news,
    remove_notification_address,
    set_notification_address,
)
from sealpost.gateway.store.people import (
    AccountContactRow,
    AccountRow,
    ContactRow,
    CorrespondentRow,
    NamedContactRow,
    account,
    approved_contacts_of_detainee,
    contact,
    contact_between,
    contact_requests,
    contacts_of_account,
    correspondent,
    create_account,
    decide_contact,
    is_privileged,
    request_contact,
    revoke_correspondent,
    verify_correspondent,
)
from sealpost.gateway.store.placements import (
    DetaineeRow,
    HandoverRow,
    InstitutionRow,
    MailboxKeyRow,
    RegimeRow,
    add_mailbox_key,
    complete_handovers,
    create_institution,
    detainee,
    ensure_default_regimes,
    held_mailbox_key_ids,
    institution,
    intake_detainee,
    list_detainees,
    list_institutions,
    list_regimes,
    mailbox_key_owner,
    mailbox_keys_for,
    pending_handovers,
    regime,
    release_detainee,
    set_detainee_regime,
    set_regime,
    transfer_detainee,
)
from sealpost.gateway.store.releases import set_web_app_release_index, web_app_release_index
from sealpost.gateway.store.review import (
    DecisionRow,
    EscrowedRow,
    RetrospectiveRequestRow,
    ScreeningOrderRow,
    add_grant,
    create_order,
    decide_retrospective,
    decisions,
    end_order,
    escrowed_at,
    escrowed_count,
    file_retrospective,
    has_grant,
    messages_in_period,
    order,
    order_windows,
    orders_of,
    queue,
    queue_by_institution,
    retrospective,
    retrospective_windows,
    retrospectives,
    waiting_since,
)
from sealpost.gateway.store.scopes import Scopes
from sealpost.gateway.store.staff import (
    StaffMemberRow,
    record_staff,
    staff_member,
)
from sealpost.gateway.store.terminals import (
    TerminalRow,
    add_terminal,
    list_terminals,
    revoke_terminal,
    terminal,
    terminal_by_fingerprint,
)
from sealpost.gateway.store.triage import (
    WatchListRow,
    put_watch_list,
    seal_triage,
    watch_list,
    watch_lists_of,
)

__all__ = [
    "GATEWAY_ACTOR",
    "AccountContactRow",
    "AccountRow",
    "ContactRow",
    "CorrespondentRow",
    "DecisionRow",
    "DeliveryRow",
    "DetaineeRow",
    "EscrowedRow",
    "FeedRow",
    "HandoverRow",
    "InstitutionRow",
    "KeyRecordRow",
    "MailboxKeyRow",
    "MessageRow",
    "NamedContactRow",
    "NewMessage",
    "NewsRow",
    "NotificationRow",
    "RegimeRow",
    "RetrospectiveRequestRow",
    "Scopes",
    "ScreeningOrderRow",
    "StaffMemberRow",
    "TerminalRow",
    "WatchListRow",
    "WithheldRow",
    "account",
    "account_audience",
    "accounts_with_news",
    "add_challenge",
    "add_device_link",
    "add_feed",
    "add_grant",
    "add_key_record",
    "add_mailbox_key",
    "add_succession",
    "add_terminal",
    "approved_contacts_of_detainee",
    "claim_news",
    "complete_handovers",
    "contact",
    "contact_between",
    "contact_requests",
    "contacts_of_account",
    "correspondent",
    "count_by_state",
    "create_account",
    "create_institution",
    "create_order",
    "current_key",
    "decide_contact",
    "decide_retrospective",
    "decisions",
    "delete_settled_before",
    "deliveries",
    "detainee",
    "end_order",
    "ensure_default_regimes",
    "escrowed_at",
    "escrowed_count",
    "feed_after",
    "file_retrospective",
    "has_grant",
    "held_mailbox_key_ids",
    "insert_message",
    "institution",
    "institution_audience",
    "intake_detainee",
    "is_privileged",
    "key_record",
    "key_records_by_id",
    "keys_of",
    "latest_record",
    "list_detainees",
    "list_institutions",
    "list_regimes",
    "list_terminals",
    "log",
    "log_acceptance",
    "mailbox_key_owner",
    "mailbox_keys_for",
    "message",
    "message_exists",
    "message_of_account",
    "messages_in_period",
    "new_id",
    "notification_address",
    "order",
    "order_windows",
    "orders_of",
    "pending_handovers",
    "put_watch_list",
    "queue",
    "queue_by_institution",
    "record_staff",
    "records_of",
    "regime",
    "release_detainee",
    "release_news",
    "remove_notification_address",
    "request_contact",
    "retrospective",
    "retrospective_windows",
    "retrospectives",
    "revocations",
    "revoke_correspondent",
    "revoke_key",
    "revoke_terminal",
    "seal_triage",
    "set_detainee_regime",
    "set_notification_address",
    "set_regime",
    "set_state",
    "set_web_app_release_index",
    "staff_member",
    "successions",
    "take_challenge",
    "take_device_link",
    "terminal",
    "terminal_by_fingerprint",
    "transfer_detainee",
    "verify_correspondent",
    "waiting_since",
    "watch_list",
    "watch_lists_of",
    "web_app_release_index",
    "withheld",
]
