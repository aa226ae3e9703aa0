"""Enrollment: who is a member of which plan, and their family data.

Owns memberships (join, change, waiting period, advance), bulk member imports, family coverage and
the member data export. Use cases: enroll_member (joins.py: with consent to the plan's current
rules, and on a post-paid Alipay plan an active debit agreement, debit_authorisations.py);
get_membership, list_family_memberships, change_membership, advance_memberships,
list_plan_members (memberships.py); import_members, import_members_from_text (member_imports.py); family_coverage,
export_member_data (member_data.py). Every join and change of state is a membership_event leaf of
the transparency log, queued in its transaction (membership_leaves.py; issue 14).
"""
