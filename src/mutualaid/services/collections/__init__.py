"""Collections and ledger: money in and out, in double entry.

Owns collecting each period's charges (files, results, retries), prepaid top-ups, paying approved
claims, and the double-entry ledger every movement is posted to. Use cases: collect_period,
collection_summary, export_collection_file, import_collection_results, retry_failed_payments, top_up,
prepaid_balance, pay_approved_claims (collections.py); post, load_transaction, reverse_transaction,
balances, unbalanced_transactions, account_balances (ledger.py).
"""
