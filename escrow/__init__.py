"""The key-server boundary: a typed wrapper around hvac for OpenBao and Vault."""
