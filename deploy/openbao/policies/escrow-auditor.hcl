# Escrow auditor: check that escrowed data keys open (docs/audit.md, "Escrow audit").
# Granted to staff entities with the role "escrow-auditor", next to staff.hcl; never
# combined with the screener or auditor roles, so its decrypts are told apart.

# Decrypt only, with this person's own token: the audit device names them, and the
# auditor's reconciliation matches each decrypt to a logged escrow-audit grant for a
# message the log itself drew into the sample. The tool checks each key against the
# sender's commitment and never opens content.
path "$transit_mount/decrypt/$escrow_key" {
  capabilities = ["update"]
}
