"""The web UI's views: the requester's form and status page, the agent dashboard, analytics."""
