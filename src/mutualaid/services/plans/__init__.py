"""Plans: the published rules of a mutual aid plan, its statistics and sponsored schemes.

Owns plan publication and the rules a plan is judged by, the operator dashboard figures, and schemes
that sponsor cover. Use cases: publish_plan, list_plans, plan_rules, plan_source (plans.py);
plan_statistics, operator_dashboard (plan_statistics.py); attach_scheme, list_schemes, scheme_terms,
sponsor_periods, list_sponsorships, sponsorship_of_period (schemes.py).
"""
