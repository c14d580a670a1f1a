"""Install nnunet_transfer: transfer learning for medical image segmentation on top of nnU-Net v2."""
from setuptools import find_packages, setup

setup(
    name="nnunet_transfer",
    version="0.1.0",
    description="Pretraining and fine-tuning for nnU-Net v2: shared plans, weight transfer, lesion-aware studies.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["nnunet_transfer", "nnunet_transfer.*"]),
    # The nnU-Net trainer lookup folder is not a Python package: nnU-Net imports its single
    # module as a top-level name (see nnunet_transfer/nnunet_ext/README.md).
    package_data={"nnunet_transfer": ["nnunet_ext/*.py", "nnunet_ext/README.md"]},
    install_requires=[
        "nnunetv2>=2.8.1,<2.9",
        "huggingface_hub>=0.23",  # checkpoints named by hub id (nnunet_transfer.hub)
        "torch>=2.1",
        "dynamic-network-architectures>=0.4",
        "batchgenerators>=0.25",
        "batchgeneratorsv2>=0.3",
        "acvl-utils>=0.2",
        "SimpleITK>=2.2",
        "nibabel>=5",
        "numpy>=1.24",
        "scipy>=1.15",  # bootstrap(..., rng=)
        "nilearn>=0.10.3",
        "scikit-image>=0.21",
        "scikit-learn>=1.3",
        "connected-components-3d>=3.12",
        "pandas>=2",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "threadpoolctl>=3",
        "Pillow>=9",
        "xlrd>=2",  # IXI.xls (old Excel format) in the IXI converter
        "submitit>=1.5",
        "pydantic>=2.5",  # typed study files and plans blocks (already required by nnU-Net's blosc2)
        "tomli>=1.1; python_version < '3.11'",  # tomllib of Python 3.11+
        "tomli-w>=1",  # the demo writes its study file
        "setuptools; python_version >= '3.12'",  # nnU-Net 2.8's preprocessing imports distutils
    ],
    # xlwt writes the IXI.xls fixture; pytest-xdist runs the suite on every core (pytest.ini); MONAI is
    # the second, independent implementation the boundary metrics are checked against
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6", "xlwt>=1.3", "monai>=1.4"]},
    entry_points={"console_scripts": ["nnunet_transfer=nnunet_transfer.cli:main"]},
    classifiers=["Programming Language :: Python :: 3", "Topic :: Scientific/Engineering :: Medical Science Apps."],
)
