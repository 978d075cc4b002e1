"""Real data: rosbag2 bags (MCAP / sqlite3), bag recovery, transition datasets and their summaries."""
from sim2real_core.data.bagio import BagError, BagReader, BagWriter, read_metadata, reliable_qos, typestore, write_bag
from sim2real_core.data.convert import STATE_LAYOUT, bag_to_dataset
from sim2real_core.data.dataset import DatasetError, TransitionDataset, load_dataset, save_dataset
from sim2real_core.data.recover import RecoveryReport, recover_bag
from sim2real_core.data.summary import format_summary, summarize

__all__ = [
    "BagError", "BagReader", "BagWriter", "DatasetError", "RecoveryReport", "STATE_LAYOUT", "TransitionDataset",
    "bag_to_dataset", "format_summary", "load_dataset",
    "read_metadata", "recover_bag", "reliable_qos", "save_dataset", "summarize", "typestore", "write_bag",
]
