"""Claims: a critical-illness claim from report to decision, with its evidence and publicity.

Owns the claim lifecycle (report, review, investigation, documents, decision, withdrawal), the public
notice period and objections, the evidence files, and the casework queues staff read. The claim's
view, loading and its one way to change state (`apply_event`, with timeline, audit, leaf and
notice) are in claims.py. Use cases: report_claim, withdraw_claim (filing.py); start_review,
assign_investigation, request_documents, provide_documents, file_investigation_report,
decide_claim (review.py); run_publicity, public_case, cases_in_publicity, object_to_claim,
review_objection (publicity.py); get_claim, claim_timeline, work_queue (views.py); add_evidence,
list_evidence, open_evidence (evidence.py); notice_days, notice_of (notices.py);
route_investigation (routing.py: by the risk score, field or desk); staff_members,
case_file_extras, objections_to_review, objections_filed_by, claims_reported_by, queue_details
(casework.py: the queue's columns and each case's next step); staff_search (staff_search.py).
"""
