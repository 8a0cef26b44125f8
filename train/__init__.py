"""sweepkit's ResNet CIFAR-10 trainer: the program every sweep run executes."""
