"""Observability: every metric (declared once), the decision observer and audit log, logging."""
