# Key administrator: rotate the escrow key, schedule rotation and retire old
# versions (retention by crypto-shredding). Never encrypts or decrypts, never
# creates, deletes, exports or backs up the key. Granted to the staff role
# "administrator", next to staff.hcl.

# Read the key's versions and configuration (never its material).
path "$transit_mount/keys/$escrow_key" {
  capabilities = ["read"]
}

path "$transit_mount/keys/$escrow_key/rotate" {
  capabilities = ["update"]
}

# Only these parameters: deletion_allowed, exportable and allow_plaintext_backup
# stay out of reach, so the key can never be made deletable or exportable.
path "$transit_mount/keys/$escrow_key/config" {
  capabilities = ["update"]
  allowed_parameters = {
    "auto_rotate_period"     = []
    "min_decryption_version" = []
    "min_encryption_version" = []
  }
}

# Trimming removes retired versions from the key ring for good.
path "$transit_mount/keys/$escrow_key/trim" {
  capabilities = ["update"]
  allowed_parameters = {
    "min_available_version" = []
  }
}

# The directory and log keys: read their versions, start a new version (rotation,
# docs/operations.md "Rotating the directory and log keys"). Never sign with them.
path "$signing_mount/keys/$directory_key" {
  capabilities = ["read"]
}

path "$signing_mount/keys/$log_key" {
  capabilities = ["read"]
}

path "$signing_mount/keys/$directory_key/rotate" {
  capabilities = ["update"]
}

path "$signing_mount/keys/$log_key/rotate" {
  capabilities = ["update"]
}
