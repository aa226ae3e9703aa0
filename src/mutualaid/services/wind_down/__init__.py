"""Wind-down: ending a plan in order, and what members take with them.

Owns the end announcement, prepaid refunds, end of cover and closing the plan, the minimum membership
check, member records and the migration export, and the final archive. Use cases: wind_down_status,
announce_end, refund_prepaid, end_cover, close_plan, check_minimum_membership (wind_down.py);
member_record, member_record_csv, migration_export (exports.py); write_archive (archives.py).
"""
