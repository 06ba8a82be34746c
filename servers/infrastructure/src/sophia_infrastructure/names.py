"""The infrastructure server's tool names: hints, docstrings and refusals import them, so none can drift."""

from __future__ import annotations

GPU_TYPES = "gpu_types"
GPU_INSTANCES = "gpu_instances"
GPU_ACCOUNT = "gpu_account"  # images, SSH keys, file systems, firewall rules
GPU_LAUNCH = "gpu_launch"
GPU_TERMINATE = "gpu_terminate"
GPU_RESTART = "gpu_restart"
GPU_SSH_KEY = "gpu_ssh_key"
GPU_FILE_SYSTEM = "gpu_file_system"
