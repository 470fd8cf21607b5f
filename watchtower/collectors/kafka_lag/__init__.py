"""Consumer-group lag in messages and seconds, rates, drain time and group status.

collector.py  KafkaLagCollector: one cycle of Admin API calls, and the registry's KIND
tracker.py    LagTracker: the pure fold of one cycle's offsets into samples (and SPECS)
model.py      the value types the tracker works on (ClusterView, GroupInfo, ...)
seconds.py    lag in seconds: the (offset, wall time) table and its interpolation
probe.py      TimestampProbe: reads the records at committed offsets on its own thread
config.py     KafkaLagConfig, the `daemon.collectors.kafka_lag:` section
"""
