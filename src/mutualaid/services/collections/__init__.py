"""Collections: money in from members and out to approved claims.

Owns collecting each period's charges (provider files, results, retries), prepaid top-ups and paying
approved claims; every movement is posted to the ledger package. Use cases: collect_period,
collection_summary (debits.py, with what each payer owes in dues.py and the payment provider in
providers.py), export_collection_file, import_collection_results (files.py),
retry_failed_payments (retries.py), top_up, prepaid_balance (prepaid.py), pay_approved_claims
(payouts.py).
"""
