"""Analysis of the query log: clusters of unanswered questions and the operators' report."""

__all__: list[str] = []
