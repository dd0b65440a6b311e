"""``sealpost admin``: the administrators' command line."""
