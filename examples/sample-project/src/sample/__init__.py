"""A tiny library for the demo: a dbt-style model name helper and a price calculator."""


def model_name(schema: str, table: str) -> str:
    """The quoted two-part name of a model, as a SQL dialect would want it."""
    if not schema or not table:
        raise ValueError("schema and table are required")
    return f'"{schema}"."{table}"'


def total_with_tax(amount: float, rate: float) -> float:
    """Amount plus tax, rounded to cents."""
    if rate < 0:
        raise ValueError("rate must not be negative")
    return round(amount * (1 + rate), 2)
