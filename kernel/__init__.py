"""What every Agora process needs (settings, logs, tokens, field encryption, event
following) and nothing above it: the kernel imports only contracts and libraries."""
