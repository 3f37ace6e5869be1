"""distributed's protocol tests, run against ndpickle (a package, so that its conftest does
not shadow the test tree's own ``conftest`` module)."""
