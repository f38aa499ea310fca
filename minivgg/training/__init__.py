"""Training a classifier (:mod:`.train`) and fitting what makes it trustworthy (:mod:`.calibrate`)."""
