"""The marketing plan: the KPIs that matter (customer equity, satisfaction, relative attractiveness),
each with its method and interval (:mod:`touchpoint.plan.kpis`)."""
