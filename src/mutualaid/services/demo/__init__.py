"""The demo: a plan that has lived, made by the real services under a clock set in the past.

Owns the history the demo and the page tests share (history.py: live_history), the witnesses
that cosign the demo's checkpoints in process (witnesses.py: demo_witnesses) and the demo itself
with its logins (seeding.py: seed_demo). Generated crowds of members are in services/demo_data.py.
"""
