# One configuration for the three OpenBao nodes of deploy/compose/compose.yaml: the shape
# of deploy/openbao/production.hcl (docs/operations.md, section 8). What differs per node
# comes from the environment: BAO_API_ADDR, BAO_CLUSTER_ADDR and BAO_RAFT_NODE_ID.

ui        = false
log_level = "info"

# Raft keeps the data; swapping is the host's to prevent (no IPC_LOCK in the container).
disable_mlock = true

# Standbys forward every request to the active node (section 8.1).
disable_standby_reads = true

storage "raft" {
  path                   = "/openbao/file"
  performance_multiplier = 1

  # Every node lists all three; a node skips itself.
  retry_join {
    leader_api_addr     = "https://bao-1:8200"
    leader_ca_cert_file = "/run/secrets/bao-ca.pem"
  }
  retry_join {
    leader_api_addr     = "https://bao-2:8200"
    leader_ca_cert_file = "/run/secrets/bao-ca.pem"
  }
  retry_join {
    leader_api_addr     = "https://bao-3:8200"
    leader_ca_cert_file = "/run/secrets/bao-ca.pem"
  }
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  # One certificate for bao-1, bao-2, bao-3, bao.sealpost.example and 127.0.0.1.
  tls_cert_file   = "/run/secrets/bao.pem"
  tls_key_file    = "/run/secrets/bao-key.pem"
  tls_min_version = "tls13"

  max_request_json_strings = 1000
  max_request_size         = 33554432
}

# The same two audit devices on every node, paths included (section 8.1), each on a
# volume of its own.
audit "file" "sealpost-audit-a" {
  description = "Every request and response; primary copy."
  options {
    file_path = "/openbao/audit-a/audit.log"
    mode      = "0600"
  }
}

audit "file" "sealpost-audit-b" {
  description = "Every request and response; second copy on separate storage."
  options {
    file_path = "/openbao/audit-b/audit.log"
    mode      = "0600"
  }
}
