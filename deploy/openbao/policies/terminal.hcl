# Institution terminal: escrow a message's data key, and seal triage for its screeners (spec P9).
#
# Rendered by `sealpost.escrow.bootstrap` (Python string.Template): the
# placeholders name the transit mount and the escrow key. Terminal tokens are
# periodic, orphan and carry no default policy.

# "update" only: encryption with the existing key. Without "create" a terminal
# can never upsert a new key; without decrypt it can never recover a data key.
path "$transit_mount/encrypt/$escrow_key" {
  capabilities = ["update"]
}

# Keep the periodic token alive and let the terminal inspect it.
path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Triage (docs/review.md, "Triage"): seal a queued message's summary for the
# institution's screeners, and read the institution's sealed watch lists. Its own
# key: nothing here opens a message's data key.
path "$transit_mount/encrypt/$triage_key" {
  capabilities = ["update"]
}

path "$transit_mount/decrypt/$triage_key" {
  capabilities = ["update"]
}
