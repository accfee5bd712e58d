"""How the benchmark scripts (benchmarks/loadgen/run_figures.py,
tests/replication/bench_replication.py) print their figures: a Markdown
table, one row as soon as its run is done."""


def print_row(cells):
    print("| " + " | ".join(str(cell) for cell in cells) + " |", flush=True)


def print_header(columns):
    print_row(columns)
    print("|" + "---|" * len(columns), flush=True)
