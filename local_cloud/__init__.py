"""The local cloud: moto plus the managed glue moto lacks, so the stack runs on one machine."""
