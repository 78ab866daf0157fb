"""The export job service of the embedded store: job records, writers, recovery and expiry."""
