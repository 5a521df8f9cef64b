//! safetensors load/save with PyTorch state_dict names (filled in by the data/weights work).
