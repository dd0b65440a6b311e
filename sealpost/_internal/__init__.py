"""Internal helpers shared by the parts of Sealpost; not a public API."""
