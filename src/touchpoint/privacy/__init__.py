"""Privacy by construction (issue 21): consent, access export, erasure, suppression, the audit log and
retention. Each module is about one noun; the surfaces (API, CLI, dashboard) call them and only format."""
