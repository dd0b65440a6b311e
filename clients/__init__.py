"""The user programs: relative SDK and CLI, institution terminal, review tool, admin, audit."""
