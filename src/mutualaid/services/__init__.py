"""Use cases: one function per action, one transaction each, an audit row inside it."""
