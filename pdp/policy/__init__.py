"""Policy sources: Graph JSON / YAML documents -> typed model -> diagnostics -> compiled set."""
