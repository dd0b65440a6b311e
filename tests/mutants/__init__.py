"""Hand-written mutants of the security checks, and the runner that proves the tests kill them.

Each mutant breaks one check the way a careless edit or a hostile one would (a check
removed, a comparison loosened, a rule widened), names the SPEC property it breaks,
and names the tests that must fail. ``python -m tests.mutants`` (``make mutants``)
applies them one at a time, runs those tests, restores the file, and reports each
mutant killed or survived. docs/security-checks.md records the table and the run.
"""
