"""Accounts: who may sign in and how often they may try.

Owns user accounts, sessions and the login throttle. Use cases: register_account, log_in, log_out,
authenticate, get_account (accounts.py); throttled_log_in, check_login_allowed, record_failed_login
(login_throttle.py).
"""
