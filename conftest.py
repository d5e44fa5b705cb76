"""Load the vitcnn pytest plugin (options, sweep parametrization, measuring fixture, gate)."""

pytest_plugins = ["vitcnn.plugin"]
