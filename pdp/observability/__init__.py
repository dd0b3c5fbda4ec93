"""Observability: the structured log configuration (and, later, metrics), each set up once."""
