"""Converters from public datasets, as published, to nnU-Net raw datasets (``nnunet_transfer convert``)."""
