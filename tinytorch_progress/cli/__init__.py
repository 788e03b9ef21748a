"""The `tito` command line: `commands` (the command table and the shared parser), one module per command group, and
`main` (parse, run, print). Hand-written, not generated: nbdev exports modules, not package `__init__` files."""
