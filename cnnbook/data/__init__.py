"""The course's datasets (Fashion-MNIST, MNIST, CIFAR-10) as in-memory tensors.

    from cnnbook.data import load_data
    train_iter, test_iter = load_data("fashion_mnist", batch_size=256, resize=96)

Raw files come from the ``data/`` cache, the mirror named by ``CNNBOOK_DATA_MIRROR``, or a
download, in that order (see ``sources``); splits are cached as tensors (see ``splits``).
"""
from cnnbook.data.catalog import DATASETS, class_names, info
from cnnbook.data.image_folder import FolderData, build_demo_folder, load_image_folder
from cnnbook.data.loader import (BatchTransform, MapBatches, TensorLoader, load_data, random_crop,
                                 random_hflip)
from cnnbook.data.sources import DatasetCorrupt, DatasetUnavailable, data_dir, mirror_dir
from cnnbook.data.splits import load_split, prepare, subset_per_class

__all__ = ["DATASETS", "BatchTransform", "MapBatches", "DatasetCorrupt", "DatasetUnavailable", "TensorLoader",
           "FolderData", "build_demo_folder", "load_image_folder",
           "class_names", "data_dir", "info", "load_data", "load_split", "mirror_dir", "prepare",
           "random_crop", "random_hflip", "subset_per_class"]
