"""The REST API's views, one module per resource; ``base`` holds what they share."""
