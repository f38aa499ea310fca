"""The application: many files through one classifier (:mod:`.predict`), the file-to-figure pipeline
(:mod:`.pipeline`), resumable results files (:mod:`.results`) and Dask (:mod:`.cluster`)."""
