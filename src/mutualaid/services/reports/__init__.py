"""Reports: read-only views for operators and auditors.

Owns the plan report and its charts data, and the audit log search. Use cases: plan_report
(reports.py, its fairness section in fairness.py); search_audit (audit_search.py).
"""
