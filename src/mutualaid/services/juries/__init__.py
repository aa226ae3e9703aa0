"""Juries: member juries that hear disputed claim rejections.

Owns juror certification, panel seating, votes and closing due juries. Use cases:
certification_quiz, certify_juror (certification.py); eligible_jurors (eligibility.py);
dispute_rejection, refer_to_jury, seat_panel, seat_waiting_panels (panels.py); juror_case_file,
cast_vote (votes.py); close_due_juries (closing.py); jury_rounds, open_votes_for (juries.py: the
round's view and a juror's pseudonym); certified_at, votes_cast_by (juror_records.py).
"""
