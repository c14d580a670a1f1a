"""The embedded demo: synthetic T1 brain-MRI datasets made from the MNI ICBM 2009a template
(anatomy, stroke-like and MS-like lesions, atrophy grades) and natural-image datasets from
scikit-image / scikit-learn pictures, written as nnU-Net raw datasets; ``demo`` runs them as a
study. ``menu`` names what the demo offers without loading any of it."""
