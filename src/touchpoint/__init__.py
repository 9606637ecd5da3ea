"""touchpoint: one open-source system for customer data and marketing intelligence.

Collect events (Segment-compatible), resolve identities, predict, measure and act, on one copy
of the data in a warehouse (embedded DuckDB by default).
"""

__version__ = "0.1.0"
