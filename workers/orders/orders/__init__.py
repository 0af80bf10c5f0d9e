"""Orders and their saga: placing, reading and moving orders; the saga that reserves stock,
takes the payment and compensates."""
