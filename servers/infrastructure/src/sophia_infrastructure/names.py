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

STACK_LIST = "stack_list"
STACK_OUTPUTS = "stack_outputs"
STACK_CONFIG = "stack_config"
STACK_CONFIG_SET = "stack_config_set"
STACK_PREVIEW = "stack_preview"
STACK_UP = "stack_up"
STACK_REFRESH = "stack_refresh"
STACK_DESTROY = "stack_destroy"
STACK_HISTORY = "stack_history"
STACK_CANCEL = "stack_cancel"
STACK_SCALE = "stack_scale"

INFRA_OPTIMIZE = "infra_optimize"  # the cost report: replicas vs measured use, idle GPUs
