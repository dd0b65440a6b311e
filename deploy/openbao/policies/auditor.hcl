# Auditor: verify the key server's configuration, never use the escrow key.
# Reconciliation reads the audit device's files, which are outside the API.
# Granted to the staff role "auditor", next to staff.hcl.

# Confirm that the escrow mount logs the derivation context (message id) in clear.
path "sys/mounts/$transit_mount/tune" {
  capabilities = ["read"]
}

# Read Sealpost's policies to check they are the least-privilege ones published.
path "sys/policies/acl/$policy_prefix-*" {
  capabilities = ["read"]
}

# Nothing on the escrow key, even if another policy were attached by mistake.
path "$transit_mount/encrypt/*" {
  capabilities = ["deny"]
}

path "$transit_mount/decrypt/*" {
  capabilities = ["deny"]
}
