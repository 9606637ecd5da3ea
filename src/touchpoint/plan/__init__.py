"""The marketing plan: the KPIs that matter, each with its method and interval (:mod:`touchpoint.plan.kpis`),
and plans (a goal, behaviour changes, tactics) with their arithmetic, roll-up and quarterly review
(:mod:`touchpoint.plan.workflow`)."""
