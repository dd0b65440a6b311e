# OpenBao for Sealpost in production: one node of a three-node raft cluster.
#
# An example to adapt, not to copy blindly: host names, paths and certificate
# files are placeholders. Each node gets the same file with its own node_id,
# api_addr and cluster_addr. HashiCorp Vault reads the same configuration
# (storage "raft", listener "tcp", audit devices via `vault audit enable`).
#
# What Sealpost relies on (deploy/openbao/README.md, docs/operations.md):
# - Raft integrated storage replicated over three nodes: one node may fail
#   without losing the escrow key or the service.
# - TLS 1.3 on every listener; clients verify the server with the cluster CA.
# - Two file audit devices on two separate file systems. The server refuses
#   a request when no audit device can record it, so a full or failed disk
#   stops decrypts instead of letting them happen unlogged; with two devices
#   one failure does not stop the service. Ship both files off the host
#   (append-only / WORM storage) so nobody on this host can edit history.

ui        = false
log_level = "info"

# Standbys forward every request to the active node (OpenBao 2.5 and later would
# otherwise answer reads, transit encrypt and decrypt included, from their own copy).
# So a revoked token, a raised min_decryption_version or a trimmed key version is
# refused at once on every node, and each request is audited once, by the active
# node (docs/operations.md, section 8).
disable_standby_reads = true

# This node's addresses as other nodes and clients reach them.
api_addr     = "https://bao-1.sealpost.example:8200"
cluster_addr = "https://bao-1.sealpost.example:8201"

storage "raft" {
  path    = "/var/lib/openbao/raft"
  node_id = "bao-1"

  # Raft's fastest timing. The default (5) makes every Raft timeout five times
  # longer, so a failed leader would be noticed and replaced that much later.
  performance_multiplier = 1

  # Each node lists the others; a restarted node rejoins on its own.
  retry_join {
    leader_api_addr     = "https://bao-2.sealpost.example:8200"
    leader_ca_cert_file = "/etc/openbao/tls/ca.pem"
  }
  retry_join {
    leader_api_addr     = "https://bao-3.sealpost.example:8200"
    leader_ca_cert_file = "/etc/openbao/tls/ca.pem"
  }
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_cert_file   = "/etc/openbao/tls/bao-1.pem"
  tls_key_file    = "/etc/openbao/tls/bao-1-key.pem"
  tls_min_version = "tls13"

  # Default limits, stated so nobody lowers them by accident: a JSON body may
  # hold at most 1000 strings, which is why Sealpost escrows in batches of 200
  # (four strings per item).
  max_request_json_strings = 1000
  max_request_size         = 33554432
}

# The audit devices are the same on every node, paths included: the audit table lives
# in the cluster's replicated storage, and a node whose declared devices differ from it
# is refused ("modifications to audit devices are not allowed"). Each node writes the
# requests it serves to its own local files at these paths.

# Audit device 1: on its own file system (for example a dedicated volume).
audit "file" "sealpost-audit-a" {
  description = "Every request and response; primary copy."
  options {
    file_path = "/var/log/openbao-audit-a/audit.log"
    mode      = "0600"
  }
}

# Audit device 2: on a second, separate file system. Never the same disk as
# device 1, or one full disk silences both.
audit "file" "sealpost-audit-b" {
  description = "Every request and response; second copy on separate storage."
  options {
    file_path = "/var/log/openbao-audit-b/audit.log"
    mode      = "0600"
  }
}

# Unsealing: by default OpenBao uses Shamir key shares held by separate
# people. An auto-unseal (seal "pkcs11", "transit", "awskms", ...) may replace
# them; keep the recovery keys split among several officers either way.
