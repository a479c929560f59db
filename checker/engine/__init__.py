"""The engine and the run: records + rules -> findings.

Holds one trace's replay on the model with its rules' checks (`filecheck.FileCheck`), the
folding of consequences under their root finding (`folding`), and a whole run over many
traces with the user's gates, in one process or several (`run`).

May import: `model`, `checker.errors`, `checker.findings`, `checker.reading`,
`checker.language`, `checker.gating`. Not reporters or the CLI: what a reporter needs
recorded (the HTML report's timeline) is handed in as a callable (`RunOptions.recorder`).
"""
