# The two commands of the README. Both set up ./.venv on first use.
.PHONY: run test setup

run:
	@scripts/setup.sh
	.venv/bin/studio

test:
	@scripts/setup.sh test
	.venv/bin/python -m pytest -q

setup:
	@scripts/setup.sh test
