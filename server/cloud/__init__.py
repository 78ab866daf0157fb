"""Cloud exports (issue 15): read FOCUS exports where AWS, Azure and Google deliver them, and sync them.

- ``objects``: object-store access (obstore) for s3://, az://, gs:// URLs, errors mapped to ``tools.errors``;
- ``aws``, ``azure``, ``plain``: which objects of an export to load, per delivery unit (no double counting);
- ``cache``: streaming the chosen objects to a local cache under the data dir, in bounded memory;
- ``state``: what each sync loaded (a table in the store generation itself);
- ``sync``: load or sync sources into a ``Store`` writer; ``background``: ``serve --sync``.
"""
