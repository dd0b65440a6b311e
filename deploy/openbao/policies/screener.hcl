# Screener (security officer): recover a data key for lawful review, with the
# screener's own token, so that the audit device names the person (spec P6, P9).
# Granted to staff entities with the role "screener", next to staff.hcl.

# Decrypt only. The key server checks the derivation context (the message id),
# so a ciphertext opens only for the message it was escrowed for.
path "$transit_mount/decrypt/$escrow_key" {
  capabilities = ["update"]
}

# Triage: open the queue's sealed summaries (no content: detectors, counts, language)
# and read and seal the institution's watch lists. Its own key: never a data key.
path "$transit_mount/encrypt/$triage_key" {
  capabilities = ["update"]
}

path "$transit_mount/decrypt/$triage_key" {
  capabilities = ["update"]
}
