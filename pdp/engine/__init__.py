"""The decision engine: a pure function from a sign-in and a compiled policy set to a decision."""
