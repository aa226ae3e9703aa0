"""Periods: sharing approved payouts among members, one period at a time.

Owns who shares in a period, closing it (lock, compute, commit the charges tree), the period notice,
member statements and the charge proofs a member can verify, and the preview before a close.
Use cases: close_period (close.py: lock, compute with cohorts.py, commit the tree with
charges.py, one unit of work per step); find_period, get_period, list_periods (views.py);
period_notice (notice.py); member_statement, account_statements (statements.py); charge_proof,
published_trust (proofs.py: the proof file, anchored to a cosigned checkpoint, is checked by
transparency.charge_proofs); preview_period (preview.py). Who shares and what each pays is
sharing.py.
"""
