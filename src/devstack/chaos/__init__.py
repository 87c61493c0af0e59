"""`dev.py chaos`: a seeded fault suite in the manner of Jepsen.

A workload of customers and organizers runs against the real processes (two booking
instances, every relay and worker, a three-node NATS JetStream cluster) while a nemesis
injects faults on a schedule drawn from a seed: processes killed and paused, PostgreSQL
stopped, connections terminated, NATS nodes lost, the mail and webhook receivers down or
slow. Every client operation is recorded (invoke, then ok, fail or info when its outcome is
unknown) in a JSONL history. When the faults stop and the system has healed, a checker reads
the history and the databases, mailbox and webhook log, and says whether any guarantee broke.

    topology   what a running chaos stack offers the workload and the checker
    stack      starting and supervising that stack
    nemesis    the seeded fault schedule and the faults themselves
    history    the recorded operations
    workload   the clients
    checker    the verdict
    run        the command
"""
