"""The devices this machine offers TensorFlow, read without initializing it (a strategy can still be made
afterwards): GPUs, their names and memory, and the host's memory."""

from __future__ import annotations

import os
import subprocess

import tensorflow as tf


def visible_gpus() -> list[tf.config.PhysicalDevice]:
    return tf.config.list_physical_devices("GPU")


def gpu_name(device: tf.config.PhysicalDevice) -> str:
    return tf.config.experimental.get_device_details(device).get("device_name", device.name)


def gpu_memory_bytes(index: int) -> int | None:
    """Total memory of visible GPU `index` (nvidia-smi; TensorFlow reports only what it has allocated), or
    None when it cannot be read."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    physical = visible.split(",")[index].strip() if visible.strip() else str(index)
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits",
                              "-i", physical], capture_output=True, text=True, check=True, timeout=20).stdout
        return int(float(out.split()[0]) * 2**20)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def host_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
