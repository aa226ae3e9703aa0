"""Enrollment: who is a member of which plan, and their family and credit data.

Owns memberships (join, change, waiting period, advance), bulk member imports, family coverage and the
member data export, and the credit checks done at joining. Use cases: enroll_member, get_membership,
list_family_memberships, change_membership, advance_memberships, list_plan_members (memberships.py);
import_members, import_members_from_text (member_imports.py); family_coverage, export_member_data
(member_data.py); load_credit_check (credit_checks.py).
"""
