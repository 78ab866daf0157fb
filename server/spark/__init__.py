"""The Spark engine (``--engine spark``): the store's queries on a Spark cluster through Spark Connect."""
