# Gateway: needs nothing from the key server. Staff identity tokens are
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
