"""Load the vitcnn pytest plugin: its options (also an installed entry point) and its hooks and fixtures."""

pytest_plugins = ["vitcnn.options", "vitcnn.plugin"]
