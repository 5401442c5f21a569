# The README's commands. SWITCHBOARD_VENV picks the virtualenv (default .venv).
.PHONY: demo test lint
demo:  ## install, migrate, load the demo company, run the web server and a worker
	scripts/demo.sh
test:  ## run the tests against the local PostgreSQL and Redis (started if down)
	scripts/test.sh
lint:  ## ruff, format check, makemigrations --check
	scripts/lint.sh
