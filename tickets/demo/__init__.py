"""The demo company: hand-written content (``content.json``) and the generator that loads it."""
