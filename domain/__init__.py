"""The domain layer: every rule of postroom's domain, in one place for every entry point.

Projects and their customer addresses, entries and their status, manual and system entries,
block rules, categories, routing decisions, users and roles, tokens, accounts, templates and
notification preferences are decided here: a domain function validates what it is given,
decides, and calls `storage` to persist the change in one transaction. The command line
(postroom/cli.py), the admin UI's views, its REST API, the ingest pipeline and the demo change
state only by calling these functions; they may read through storage's query functions.

Import rule (tests/test_structure.py holds it, docs/architecture.md draws it): `domain`
imports only `storage` (and the standard library and third-party packages), never
`postroom`, `smtpd_ingest` or `admin_ui`; `storage` imports nothing of ours.

Refusals are the exceptions of domain.errors, each a ValueError whose message is written for
the person who asked, the same words from the CLI, the UI and the API.
"""
