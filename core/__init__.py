"""Framework plumbing that knows no domain: app factory, config, database, errors, security,
audit, jobs and the API toolkit. Only `core.app` may import the domain packages."""
