"""The compress stage: pruning, channel pruning, QAT, distillation, clustering and more."""
