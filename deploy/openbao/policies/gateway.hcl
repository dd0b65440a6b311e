# Gateway: staff identity tokens are verified against the public JWKS
# (identity/oidc/.well-known/keys), which needs no token. With its keys in the key
# server (key_custody = "key-server") it signs with the directory and log keys and
# keeps its session-token key below. It never holds or uses a key that opens content
# (spec P1, P9).
#
# Explicit denials: "deny" wins over any capability another policy might grant
# to the same token by mistake.

path "$transit_mount/*" {
  capabilities = ["deny"]
}

path "identity/oidc/token/*" {
  capabilities = ["deny"]
}

# The directory and log keys (transit Ed25519, not exportable): the gateway signs key
# records, revocations and tree heads with them and reads their public keys. It can
# neither rotate, reconfigure, export nor back them up; a key administrator rotates.
path "$signing_mount/sign/$directory_key" {
  capabilities = ["update"]
}

path "$signing_mount/sign/$log_key" {
  capabilities = ["update"]
}

path "$signing_mount/keys/$directory_key" {
  capabilities = ["read"]
}

path "$signing_mount/keys/$log_key" {
  capabilities = ["read"]
}

# Its own token: looked up and renewed while the gateway runs.
path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
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
