"""One module per standard: records in, findings out; all I/O goes through the DNS session."""
