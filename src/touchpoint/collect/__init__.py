"""Collection: the event spec, validation, the group committer, file import and quarantine."""
