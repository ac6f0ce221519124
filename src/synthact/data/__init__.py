"""Data ingestion: real HMDB-51 / UCF-101 videos and splits into roots, target-domain lists, merging roots."""
