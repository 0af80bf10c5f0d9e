"""The sales projection (written in the saga's confirming transaction) and the reports
that read it."""
