"""Plans: the published rules of a mutual aid plan, its statistics and sponsored schemes.

Owns plan publication and the rules a plan is judged by, the operator dashboard figures, and schemes
that sponsor cover; each published version goes on the transparency log (a plan_version leaf
naming the file's SHA-256). Use cases: publish_plan, list_plans, plan_rules, plan_source, plan_file
(plans.py);
plan_statistics, operator_dashboard (plan_statistics.py); plan_highlights (highlights.py: what
the plan is worth, from live data); attach_scheme, list_schemes, scheme_terms,
sponsor_periods, list_sponsorships, sponsorship_of_period (schemes.py).
"""
