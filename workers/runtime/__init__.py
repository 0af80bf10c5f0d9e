"""What every worker shares: broker, outbox, inbox, handler wrapper, health. No domain code."""
