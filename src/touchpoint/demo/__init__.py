"""The demo company: a simulated shop whose ground truth is known (``touchpoint demo``)."""
