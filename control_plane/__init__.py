"""turnout's control plane: route contract, reconciler, handlers and CLI."""
