"""The escrow review tool: the screening queue, lawful review, verdicts and evidence."""
