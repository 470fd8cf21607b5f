"""The reference pipeline watchtower guards: generator, Spark job, Flink job, consumer workers."""
