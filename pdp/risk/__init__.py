"""Risk signals pdp adds to a sign-in: geo-IP, impossible travel, per-user history."""
