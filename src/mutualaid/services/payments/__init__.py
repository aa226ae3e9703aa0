"""Payments: the payment providers behind collections and payouts, and what they tell us.

Owns choosing a plan's provider (providers.py: simulated, file or Alipay, from the plan's
`[payments]` table and the settings), the Alipay adapter and its RSA2 signatures (alipay.py,
signatures.py), debit agreements (agreements.py: start_agreement), the providers' asynchronous
notifications (callbacks.py: take_notification), payouts through a provider with a four-eyes
release (transfers.py: send_payouts, release_payout), the operator console's payout desk
(payout_desk.py: payout_desk, release_for_payment, send_transfer, resend_transfer,
claim_transfers) and the daily reconciliation against the provider's statement
(reconciliation.py: reconcile); the member's side (member_payments.py:
my_payments, pay_share_now, top_up_in_yuan). Whether a payer has authorised debits, checked
when joining, is enrollment's (enrollment/debit_authorisations.py).
"""
