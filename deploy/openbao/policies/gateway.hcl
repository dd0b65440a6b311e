# Gateway: only its session-token key (at the end). Staff identity tokens are
# verified against the public JWKS (identity/oidc/.well-known/keys), which
# needs no token. The gateway never holds a key that opens content (spec P1, P9).
#
# Explicit denials: "deny" wins over any capability another policy might grant
# to the same token by mistake.

path "$transit_mount/*" {
  capabilities = ["deny"]
}

path "identity/oidc/token/*" {
  capabilities = ["deny"]
}

# The session-token key (gateway/tokenkeys.py), a KV v2 secret: read its
# versions, create the first, write a new one on rotation (check-and-set).
# Nothing else on the mount; no delete, no destroy, no metadata writes.
path "$gateway_secrets_mount/data/session-token-key" {
  capabilities = ["read", "create", "update"]
}

path "$gateway_secrets_mount/metadata/session-token-key" {
  capabilities = ["read"]
}
