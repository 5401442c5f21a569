"""The ticket pipeline: the stage table, the flow that runs it, one module per stage (see flow.py)."""
