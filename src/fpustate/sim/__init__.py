"""The cost simulator: replay scheduler traces and synthetic workloads through the designs.

Pipeline, one pass, streaming: `events` parses a trace file into records;
`infer` turns records into workload operations (`ops`), deciding which slices
run in user mode and which tasks are kernel threads; `replay` applies each
operation as the action table's events (the ones the checker explores, through
the same `Design` hooks), counting what the FPU code executes through the kernel
model's tracepoints; `bound` computes the clairvoyant minimum on the same
operations; `costs` turns counts into cycles; `report` prints and plots.
"""
