"""Data validation with Great Expectations: suites on the tables the pipeline hands from stage to stage."""
