"""Returns and refunds: a member sends goods of a delivered order back; money goes back through payments."""
