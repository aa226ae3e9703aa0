"""Periods: sharing approved payouts among members, one period at a time.

Owns who shares in a period, closing it (lock, compute, commit the charges tree), the period notice,
member statements and the charge proofs a member can verify, and the preview before a close.
Use cases: find_period, get_period, list_periods, close_period, period_notice, member_statement,
account_statements, charge_proof, verify_charge_proof (periods.py); preview_period (preview.py).
"""
