"""Envelope and key-record recipes: pure functions over bytes, no I/O."""
