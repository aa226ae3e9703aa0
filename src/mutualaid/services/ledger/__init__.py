"""Ledger: the double-entry ledger every movement of money is posted to.

Owns ledger accounts, transactions and their entries, and the balance checks. Periods post the
members' charges here, collections the payments, claims payouts and refunds. Use cases: post,
load_transaction, reverse_transaction, balances, unbalanced_transactions, account_balances
(ledger.py).
"""
