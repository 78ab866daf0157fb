"""Cloud exports (issue 15): read FOCUS exports where AWS, Azure and Google deliver them, and sync them.

- ``objects``: object-store access (obstore) for s3://, az://, gs:// URLs, errors mapped to ``tools.errors``;
- ``units``: a delivery unit (the replacement unit) and its fingerprint;
- ``resolve``: which units a URL holds (AWS, Azure, a plain prefix, one object); ``aws``, ``azure``: the
  providers' manifest rules (no double counting);
- ``cache``: streaming a unit's objects to a local cache under the data dir, in bounded memory;
- ``state``: what each sync loaded (tables in the store generation itself) and the latest attempt;
- ``sync``: load or sync sources into a ``Store`` writer; ``background``: ``serve --sync``.
"""
