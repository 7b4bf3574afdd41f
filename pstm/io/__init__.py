"""Input/output: atomic writes, Zarr traces, Parquet headers, tile files."""
