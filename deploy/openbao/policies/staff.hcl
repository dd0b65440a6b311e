# Every staff member (screener, approver, administrator, auditor): obtain an
# identity token for oneself. The token is an EdDSA-signed JWT whose claims
# (roles, institutions) come from the staff entity's metadata; the gateway
# verifies it against the public JWKS.

path "identity/oidc/token/$oidc_role" {
  capabilities = ["read"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}
