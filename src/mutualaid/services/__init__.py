"""Use cases: one function per action, one transaction each, an audit row inside it.

The modules here are the kernel every capability uses: the service context and the stores it
carries (context, evidence_store, credit_checks), idempotency, audit, personal data, notifications,
demo data. Each capability is a package (accounts, enrollment, plans, claims, juries, periods,
ledger, collections, transparency, risk, wind_down, reports); docs/architecture.md maps them.
"""
