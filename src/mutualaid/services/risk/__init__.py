"""Risk: fraud signals, claim risk scores and fraud records.

Owns the scoring of claims and evidence, the claim graph, reviewer feedback,
fraud records and their appeals. Use cases: on_claim_filed, on_evidence_added, rescore_plan
(risk.py, the scoring the claim services call); claim_risk, claim_graph, record_feedback
(reviews.py); weight_report, risk_operations (figures.py); flag_fraud, excluded_for_fraud,
my_fraud_records, appeal_fraud_record, pending_appeals, decide_appeal (fraud_records.py).
"""
