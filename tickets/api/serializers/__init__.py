"""The REST API's request and response shapes, one module per resource; ``fields`` holds the strict ones."""
