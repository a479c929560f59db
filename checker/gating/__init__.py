"""Gating: what the user chose to see and to fail on.

Holds the selection of rules (`selection`: --select, --ignore), inline suppressions
(`suppression`), baselines (`baseline`) and the configuration file (`config`).

May import: `checker.errors`, `checker.findings`, `checker.language` (the rulebook and the
codes no selection turns off). Not the engine, reporters or the CLI.
"""
