"""Keys: rotating the secret key ring and the transparency log's signing key.

Owns the move of stored personal data and evidence from older secret key versions to the current
one (`rotation.py`: key_status, rotate_personal_data, rotate_second_factors, rotate_evidence),
batch by batch, each batch its own transaction, resumable; and the announcement of a new log
signing key on the log, signed by the old one (`log_keys.py`: announce_log_key). The ring itself
is read by settings.py (MUTUALAID_SECRET_KEYS); docs/operations.md "Key rotation" has the drill.
"""
