"""Generated from proto/sealpost/v1 by `make proto`."""
