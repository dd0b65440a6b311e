"""The relative SDK and CLI: register a device, request contacts, send and read messages."""
