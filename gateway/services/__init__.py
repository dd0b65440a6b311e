"""The gRPC services of API v1: thin layers that authenticate, call the core and persist."""
