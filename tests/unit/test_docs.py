"""The documentation states what the code does."""

from __future__ import annotations

from sealpost.gateway.authz import markdown_table
from tests.conftest import REPO_ROOT

RIGHTS_CHANGED = (
    "the authorisation table in gateway/authz.py no longer matches docs/gateway.md. "
    "If a rule changed, someone's rights changed: that needs a security review against "
    "SPEC.md section 2 before anything else. Once the change is approved, update the "
    "hand-written EXPECTED table in tests/unit/test_authz_matrix.py and paste "
    "gateway.authz.markdown_table() into docs/gateway.md, in the same reviewed change."
)


def test_authorisation_table_in_docs_matches_the_code() -> None:
    document = (REPO_ROOT / "docs" / "gateway.md").read_text()
    assert markdown_table() in document, RIGHTS_CHANGED
