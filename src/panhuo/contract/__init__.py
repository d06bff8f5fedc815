"""Data contract v1 and ingest: schemas, readers (Parquet/CSV, UTF-8/GBK), validation with row-level errors."""
