"""The rule language: rule files -> checks.

Holds the loading of `rules/<family>/*.yaml` (`rulebook`), their schema and located problems
(`rule_schema`), rule expressions (`expression`, on `scope`) and the functions they call
(`rule_functions`), the compiled checks (`checks`), the dispatch table by (verb, DDI)
(`dispatch`), the `fold:` section (`fold`) and the codes the engine stands behind (`codes`).

May import: `model`, `checker.errors`, `checker.findings`, `checker.resources`, and
`checker.reading` (the DDI signature table). Not the engine, gating, reporters or the CLI.
"""
