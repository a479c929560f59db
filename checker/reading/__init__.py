"""Reading traces: text (or ETL) -> records.

Holds the reader (`reader`: files, standard input, encodings, gaps), the grammar's parser
(`parser`) and its fast path (`fastpath`), the parse tree's transformer into `model.events`
records (`transform`), the writer of canonical record text (`writer`), the DDI signature table
(`signatures`, from rules/ddi-signatures.yaml), the ETL reader (`etl`, `etl_tracelogging`,
`etl_listing` for `dmalint etl`) and the discovery of trace files (`discover`).

May import: `model` (records, values), `checker.errors`, `checker.resources`. Nothing later in
the pipeline: rules, the engine, gating, reporters or the CLI.
"""
