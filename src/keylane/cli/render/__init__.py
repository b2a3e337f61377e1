"""Terminal rendering (rich) of every command's results: the CLI is the only place that renders.

``check`` (the checker's report), ``compare`` (the comparison's table and progress), ``bench``
(the benchmarks' tables).
"""
