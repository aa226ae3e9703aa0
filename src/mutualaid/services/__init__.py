"""Use cases: one function per action, one unit of work each, an audit row inside it.

The modules here are the kernel every capability uses: the service context and the stores it
carries (context, evidence_store, credit_checks), the unit of work and idempotency keys
(idempotency), audit, personal data, notifications, bounded CSV lines, demo data. Each capability
is a package (accounts, enrollment, plans, claims, juries, periods, ledger, collections,
transparency, risk, wind_down, reports, operations); docs/architecture.md maps them.
"""
