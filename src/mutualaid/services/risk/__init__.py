"""Risk: fraud signals, claim risk scores and fraud records.

Owns the scoring of claims and evidence, the claim graph, reviewer feedback,
fraud records and their appeals. Use cases: on_claim_filed, on_evidence_added, rescore_plan,
claim_risk, claim_graph, record_feedback, weight_report, risk_operations,
flag_fraud, excluded_for_fraud, my_fraud_records, appeal_fraud_record, pending_appeals, decide_appeal
(risk.py).
"""
