from __future__ import annotations

from watchtower.config.models import KafkaConfig, PipelineConfig
from watchtower.daemon.config import DaemonConfig
from watchtower.daemon.daemon import build_collectors

KAFKA = KafkaConfig(bootstrap_servers="127.0.0.1:9092")


def test_redis_collectors_need_a_redis_url_and_canary_is_opt_in() -> None:
    names = [c.name for c in build_collectors(DaemonConfig(), KAFKA)]
    assert names == ["kafka_lag", "dlq"]
    names = [c.name for c in build_collectors(DaemonConfig(), KAFKA, redis_url="redis://127.0.0.1:1/0")]
    assert names == ["kafka_lag", "e2e_latency", "spark_progress", "pipeline_outcomes", "dlq", "chaos"]


def test_pipeline_config_supplies_topics_paths_and_streams() -> None:
    cfg = DaemonConfig.model_validate({"collectors": {"canary": {"enabled": True, "interval": "30s"}}})
    pipeline = PipelineConfig(topic="t", dlq_topic="t.dlq", data_dir="/data", progress_stream="s")
    by_name = {c.name: c for c in build_collectors(cfg, KAFKA, redis_url="redis://x:1/0", pipeline=pipeline)}
    assert by_name["canary"].topic == "t" and by_name["canary"].interval == 30
    assert by_name["dlq"].topic == "t.dlq" and by_name["dlq"].table_path == "/data/delta/dlq"
    assert by_name["spark_progress"].stream == "s"
    assert by_name["pipeline_outcomes"].stream == "s"
