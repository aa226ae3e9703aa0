"""Collections: money in from members and out to approved claims.

Owns collecting each period's charges (provider files, results, retries), prepaid top-ups and paying
approved claims; every movement is posted to the ledger package. Use cases: collect_period,
collection_summary, export_collection_file, import_collection_results, retry_failed_payments, top_up,
prepaid_balance, pay_approved_claims (collections.py).
"""
