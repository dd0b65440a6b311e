"""The gateway: gRPC services, authentication, policy, storage and the transparency log."""
