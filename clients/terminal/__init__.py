"""The institution terminal: intake, escrow, the delivery desk and detainee replies."""
