"""Images and data sets: reading files, the paper's preprocessing and augmentation, folder data sets, phantoms."""
