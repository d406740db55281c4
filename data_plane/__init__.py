"""turnout's data plane: the local gateway and the proxy handler."""
