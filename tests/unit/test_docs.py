"""The documentation states what the code does."""

from __future__ import annotations

from sealpost.gateway.authz import markdown_table
from tests.conftest import REPO_ROOT


def test_authorisation_table_in_docs_matches_the_code() -> None:
    document = (REPO_ROOT / "docs" / "gateway.md").read_text()
    assert markdown_table() in document, "regenerate the table: gateway.authz.markdown_table()"
