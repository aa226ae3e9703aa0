"""Scheduling: the worker that runs the plan's calendar (`mutualaid worker`).

Owns the schedule's run rows (`scheduled_runs`: one per job, scope and due instant, with its lease
and outcome) and the loop that fills and drains them (`worker.py`: schedule_due, claim_next,
run_claimed, tick, run_worker, schedule_table), and the table that binds each job kind of
domain/schedule.py to the use cases it calls (`jobs.py`: JobEnvironment, run_job). It holds no rule
of its own: each job is a public use case of another package (advance_memberships, close_period,
collect_period, retry_failed_payments, run_publicity, seat_waiting_panels, close_due_juries,
publish_checkpoint, dispatch_notifications, prune_rate_counters), all idempotent, so a run taken
over after a worker died simply continues.
"""
