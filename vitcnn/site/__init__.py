"""The static site of a history store (`python -m vitcnn publish`): plain HTML pages and one plotting script,
readable offline from file://."""
