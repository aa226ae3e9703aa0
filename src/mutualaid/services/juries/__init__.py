"""Juries: member juries that hear disputed claim rejections.

Owns juror certification, panel seating, votes and closing due juries. Use cases: certification_quiz,
certify_juror, eligible_jurors, dispute_rejection, refer_to_jury, seat_panel, seat_waiting_panels,
juror_case_file, cast_vote, close_due_juries, jury_rounds, open_votes_for (juries.py); certified_at,
votes_cast_by (juror_records.py).
"""
