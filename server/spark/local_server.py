"""How to start a Spark Connect server on this machine from the pyspark wheel (tests, bench, docs).

``start-connect-server.sh --master local[2]`` bound to 127.0.0.1 with its logs, pid file and warehouse in
one folder. The callers own the process (start, readiness, stop); this module only says what to run.
"""

from __future__ import annotations

import os
from pathlib import Path


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def environment(root: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any SPARK_/PYSPARK_ setting, pointed at the wheel and ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    return env | {
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOG_DIR": str(root / "logs"),
        "SPARK_PID_DIR": str(root / "pid"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        **extra,
    }


def start_command(root: Path, port: int, memory: str) -> list[str]:
    """The start-connect-server.sh command line for a loopback server on ``port``."""
    confs = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": memory,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",  # local[2]: the default 200 tiny tasks would time scheduling
    }
    args = [str(spark_home() / "sbin" / "start-connect-server.sh"), "--master", "local[2]"]
    for key, value in confs.items():
        args += ["--conf", f"{key}={value}"]
    return args
