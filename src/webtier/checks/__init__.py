"""What is checked before any host changes: preflight over a whole inventory, the
invariants between hosts, a role's live check of its host, the secret scan."""
